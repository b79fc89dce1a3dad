// Why a WebSocket could not be opened. The browser tells the page nothing (the error event has
// no detail, on purpose), but this page may ask its own server: a plain HTTP GET of the same URL
// answers 404 where there is no route and 426 Upgrade Required where a WebSocket route is. With
// what the page asked for (subprotocols, its Origin) that turns a dead end into an explanation.

import { h } from './util.js';
import { serverRoutes } from './routes.js';

const RFC = 'https://www.rfc-editor.org/rfc/rfc6455';

/** The http(s) URL for a ws(s) URL, or null. */
export function httpUrlFor(wsUrl) {
  try {
    const u = new URL(wsUrl);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return null;
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    u.hash = '';
    return u.href;
  } catch {
    return null;
  }
}

// "This server's WebSocket routes are /a, /b and /c." from /routes.json, else the bundled ones.
async function routesText() {
  const routes = (await serverRoutes()) || ['/echo', '/inspect', '/chat'];
  if (routes.length === 0) return ['This server has no WebSocket route.'];
  const names = routes.flatMap((r, i) => [i === 0 ? '' : i === routes.length - 1 ? ' and ' : ', ', h('code', null, r)]);
  return [`This server’s WebSocket route${routes.length > 1 ? 's are' : ' is'} `, ...names.slice(1), '.'];
}

const link = (section, text) => h('a', { href: `${RFC}#section-${section}` }, text);

/**
 * Fetches `wsUrl` over HTTP and returns {status, parts} (parts: strings and nodes explaining the
 * failure), given the subprotocols the page offered. Never throws.
 */
export async function explainFailedConnect(wsUrl, protocols) {
  const url = httpUrlFor(wsUrl);
  if (!url) return { status: null, parts: ['The URL is not a ws:// or wss:// URL.'] };
  if (new URL(url).origin !== location.origin) {
    return {
      status: null,
      parts: [`The page can only ask its own server (${location.origin}) why; this URL is on another one. `,
        'The developer console (F12) shows the HTTP status it answered.'],
    };
  }
  let res;
  try {
    res = await fetch(url, { cache: 'no-store', redirect: 'manual' });
  } catch (err) {
    return { status: null, parts: [`The server does not answer over HTTP either (${err.message}): is it running?`] };
  }
  const path = new URL(url).pathname;
  const got = h('strong', null, `GET ${path} → ${res.status} ${res.statusText}`);
  if (res.status === 404) {
    return { status: 404, parts: [got, ': there is no route at this path, so the handshake was refused with 404. ', ...await routesText()] };
  }
  if (res.status !== 426) {
    return { status: res.status, parts: [got, ': this path is not a WebSocket route of this server (a WebSocket route answers a plain GET with 426 Upgrade Required).'] };
  }
  const parts = [got, `: ${path} is a WebSocket route, so the path is right and something in the handshake itself failed. `];
  if (protocols.length) {
    parts.push('You offered the subprotocol', protocols.length > 1 ? 's ' : ' ', h('code', null, protocols.join(', ')),
      '. The server answered 101 without a ', h('code', null, 'Sec-WebSocket-Protocol'),
      ' header because it speaks none of them, which RFC 6455 allows (', link('4.2.2', '§4.2.2'),
      '), but a browser that offered subprotocols then fails the connection (',
      h('a', { href: 'https://websockets.spec.whatwg.org/#concept-websocket-establish' }, 'WHATWG WebSockets'),
      '): hence the error and code 1006. Leave the field empty, or use one the route speaks (',
      h('code', null, '/echo'), ': ', h('code', null, 'echo'), ' or ', h('code', null, 'uvws-echo'), ').');
  } else {
    parts.push('Without subprotocols the usual reason is the Origin: a server started with ',
      h('code', null, '--allow-origin'), ` answers 403 when this page’s Origin (${location.origin}) is not in its list (`,
      link('10.2', 'RFC 6455 §10.2'), '). The developer console shows the status.');
  }
  return { status: 426, parts };
}
