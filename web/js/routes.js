// The server's WebSocket routes, as it lists them at /routes.json (README: HTTP endpoints): the
// URL field suggests them and the 404 explanation names them. Asked once per page; null when the
// server does not say (an older uvws, --metrics off, another server, or a page opened from a file).

let asked = null;

/** The list of route paths (strings starting with '/'), or null. Never throws. */
export function serverRoutes() {
  if (!asked) {
    asked = (async () => {
      try {
        const res = await fetch(new URL('/routes.json', location.href), { cache: 'no-store' });
        if (!res.ok) return null;
        const { routes } = await res.json();
        if (!Array.isArray(routes) || !routes.every((r) => typeof r === 'string' && r.startsWith('/'))) return null;
        return routes;
      } catch {
        return null;
      }
    })();
  }
  return asked;
}

/** The ws(s):// URL of each route on the server of `base` (a URL, else this page's host), with
 *  ?deflate=off when `deflateOff`. */
export function routeUrls(routes, base, deflateOff) {
  let origin;
  try {
    const u = new URL(base);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error('not ws');
    origin = `${u.protocol}//${u.host}`;
  } catch {
    origin = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host || '127.0.0.1:8080'}`;
  }
  return routes.map((r) => `${origin}${r}${deflateOff ? '?deflate=off' : ''}`);
}
