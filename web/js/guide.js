// The guide reader: fetches /docs/<part>.md (guide.html?frames#masking) and renders the Markdown
// with the small renderer below. It knows the subset the guide uses: headings (with ids slugged
// from their text, like GitHub and test/docs/check_docs.py), paragraphs, emphasis, inline code,
// fenced code blocks, lists, tables, links and images. Links between the Markdown files
// (frames.md#fin) become guide.html?frames#fin, so the same files read well on a code host too.

export const PARTS = [
  ['README', 'Contents'],
  ['handshake', 'The handshake'],
  ['frames', 'Frames'],
  ['closing', 'Closing'],
  ['browser-api', 'The browser API'],
  ['wscat', 'Scripting with wscat'],
  ['inside-uvws', 'Inside uvws'],
  ['many', 'Many receivers'],
  ['exec', 'Any language'],
];

/** Heading text to id: lower case, only a-z 0-9 space _ -, spaces to "-" (GitHub's rule for ASCII). */
export function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-');
}

const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** The plain text of inline Markdown (for slugs): code spans, links and emphasis reduced to text. */
export function inlineText(md) {
  return md
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/(\*\*|__|\*|_)(?=\S)([^*_]*?\S)\1/g, '$2');
}

// Sections of the repository's README (which uvws does not serve) that the browser client explains
// too: a link to one of them goes to the page's own explanation instead of being dead text.
const README_ON_THE_PAGE = {
  '#the-browser-client': './#help-trace-format', // the inspector's JSON messages
  '#chat-chat': './#help-chat',
};

/** Where a link in docs/<part>.md points from guide.html; null: a repository file the server does not serve. */
export function rewriteHref(href) {
  const readme = /^\.\.\/README\.md(#.*)?$/.exec(href);
  if (readme && README_ON_THE_PAGE[readme[1]]) return README_ON_THE_PAGE[readme[1]];
  if (/^(https?:|mailto:)/i.test(href)) return href;
  if (href.startsWith('#')) return href;
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return null; // javascript: and friends
  const m = /^(?:\.\/)?([A-Za-z0-9_-]+)\.md(#.*)?$/.exec(href);
  if (m) return `guide.html?${m[1]}${m[2] || ''}`;
  if (href.startsWith('../web/')) return href.slice('../web/'.length) || './';
  if (!href.startsWith('../') && !href.startsWith('/')) return `/docs/${href.replace(/^\.\//, '')}`;
  return null;
}

function inline(md) {
  // Code spans first, so nothing inside them is interpreted.
  const codes = [];
  let s = md.replace(/`([^`]+)`/g, (_, code) => {
    codes.push(`<code>${esc(code)}</code>`);
    return `\u0000${codes.length - 1}\u0000`;
  });
  s = esc(s);
  s = s.replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, (_, alt, src) => {
    const href = rewriteHref(src.replace(/&amp;/g, '&'));
    return href ? `<img src="${esc(href)}" alt="${alt}" loading="lazy">` : alt;
  });
  s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, text, target) => {
    const raw = target.replace(/&amp;/g, '&');
    const href = rewriteHref(raw);
    if (href === null) {
      return `<span class="repo-ref" title="${esc(raw)} in the repository">${text} <span class="where">(${esc(raw.replace(/^(\.\.\/)+/, ''))}
        in the repository: this server does not serve it)</span></span>`;
    }
    const ext = /^https?:/i.test(href) ? ' rel="noopener"' : '';
    return `<a href="${esc(href)}"${ext}>${text}</a>`;
  });
  s = s.replace(/&lt;(https?:\/\/[^\s&]+)&gt;/g, (_, url) => `<a href="${url}" rel="noopener">${url}</a>`);
  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>');
  s = s.replace(/(^|[^\w*])\*(?=\S)([^*]*?\S)\*(?!\w)/g, '$1<em>$2</em>');
  s = s.replace(/(^|[^\w])_(?=\S)([^_]*?\S)_(?!\w)/g, '$1<em>$2</em>');
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => codes[Number(i)]);
}

function splitRow(line) {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

/** Markdown to HTML. Returns {html, headings: [{level, text, id}]}. */
export function render(md) {
  const lines = md.replace(/\r\n/g, '\n').split('\n');
  const out = [];
  const headings = [];
  const used = new Map();
  let i = 0;

  const isBlockStart = (l) => /^(#{1,6} |```|\s*([-*]|\d+\.) |\|)/.test(l);

  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) { i++; continue; }

    const fence = /^```\s*([\w-]*)(.*)$/.exec(line);
    if (fence) {
      const body = [];
      for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
      i++;
      const lang = fence[1] ? ` class="language-${esc(fence[1])}" data-lang="${esc(fence[1])}"` : '';
      out.push(`<pre${lang}><code>${esc(body.join('\n'))}</code></pre>`);
      continue;
    }

    const head = /^(#{1,6}) +(.*?)\s*#*\s*$/.exec(line);
    if (head) {
      const level = head[1].length;
      const text = inlineText(head[2]);
      let id = slug(text);
      const n = used.get(id) || 0;
      used.set(id, n + 1);
      if (n) id = `${id}-${n}`;
      headings.push({ level, text, id });
      out.push(`<h${level} id="${esc(id)}"><a class="anchor" href="#${esc(id)}" aria-hidden="true">#</a>${inline(head[2])}</h${level}>`);
      i++;
      continue;
    }

    if (/^\|/.test(line) && i + 1 < lines.length && /^\|?\s*:?-{3,}/.test(lines[i + 1])) {
      const header = splitRow(line);
      const rows = [];
      for (i += 2; i < lines.length && /^\|/.test(lines[i]); i++) rows.push(splitRow(lines[i]));
      out.push('<div class="table-scroll"><table class="data"><thead><tr>' +
        header.map((c) => `<th scope="col">${inline(c)}</th>`).join('') + '</tr></thead><tbody>' +
        rows.map((r) => '<tr>' + r.map((c) => `<td>${inline(c)}</td>`).join('') + '</tr>').join('') +
        '</tbody></table></div>');
      continue;
    }

    const item = /^(\s*)([-*]|\d+\.) +(.*)$/.exec(line);
    if (item) {
      const ordered = /\d/.test(item[2]);
      const items = [];
      while (i < lines.length) {
        const m = /^(\s*)([-*]|\d+\.) +(.*)$/.exec(lines[i]);
        if (m && /\d/.test(m[2]) === ordered) {
          items.push(m[3]);
          i++;
        } else if (items.length && /^\s+\S/.test(lines[i]) && !/^\s*```/.test(lines[i])) {
          items[items.length - 1] += ' ' + lines[i].trim(); // a continuation line
          i++;
        } else {
          break;
        }
      }
      const tag = ordered ? 'ol' : 'ul';
      out.push(`<${tag}>${items.map((t) => `<li>${inline(t)}</li>`).join('')}</${tag}>`);
      continue;
    }

    const para = [];
    while (i < lines.length && !/^\s*$/.test(lines[i]) && !(para.length && isBlockStart(lines[i]))) {
      para.push(lines[i].trim());
      i++;
    }
    out.push(`<p>${inline(para.join(' '))}</p>`);
  }
  return { html: out.join('\n'), headings };
}

/** The part named by the query string: guide.html?frames -> "frames"; none -> README; unknown -> null. */
export function partFromQuery(search) {
  let name;
  try {
    name = decodeURIComponent((search || '').replace(/^\?/, '').split('&')[0]);
  } catch {
    return null; // a malformed escape names no part either
  }
  if (name === '') return 'README';
  return PARTS.some(([p]) => p === name) ? name : null;
}

// ---------------------------------------------------------------- the page

const THEME_KEY = 'uvws-guide-theme';

function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  const button = document.getElementById('theme');
  if (button) button.textContent = `Theme: ${theme || 'system'}`;
}

function setupTheme() {
  let theme = null;
  try { theme = localStorage.getItem(THEME_KEY); } catch { /* storage may be off */ }
  applyTheme(theme);
  document.getElementById('theme').addEventListener('click', () => {
    const order = [null, 'light', 'dark'];
    theme = order[(order.indexOf(theme) + 1) % order.length];
    try {
      if (theme) localStorage.setItem(THEME_KEY, theme);
      else localStorage.removeItem(THEME_KEY);
    } catch { /* ignore */ }
    applyTheme(theme);
  });
}

function navLinks(part) {
  const idx = PARTS.findIndex(([p]) => p === part);
  const nav = document.getElementById('parts');
  nav.innerHTML = PARTS.map(([p, title]) =>
    `<li><a href="guide.html?${p}"${p === part ? ' aria-current="page"' : ''}>${esc(title)}</a></li>`).join('');
  const pager = document.getElementById('pager');
  const prev = PARTS[idx - 1];
  const next = PARTS[idx + 1];
  pager.innerHTML = (prev ? `<a rel="prev" href="guide.html?${prev[0]}">← ${esc(prev[1])}</a>` : '<span></span>') +
    (next ? `<a rel="next" href="guide.html?${next[0]}">${esc(next[1])} →</a>` : '<span></span>');
}

function toc(headings) {
  const list = document.getElementById('toc');
  list.innerHTML = headings.filter((h) => h.level === 2)
    .map((h) => `<li><a href="#${esc(h.id)}">${esc(h.text)}</a></li>`).join('');
}

// :target is decided when the page loads, before the text exists, and a heading inserted later
// never matches it: mark the target with a class instead, now and on every hash change.
function highlightTarget(scroll) {
  for (const el of document.querySelectorAll('#doc .is-target')) el.classList.remove('is-target');
  if (!location.hash) return;
  let id;
  try { id = decodeURIComponent(location.hash.slice(1)); } catch { return; }
  const target = document.getElementById(id);
  if (!target || !target.closest('#doc')) return;
  target.classList.add('is-target');
  if (scroll) target.scrollIntoView();
}

// A copy button on each code block (the Clipboard API needs a secure context: https or localhost).
function addCopyButtons(article) {
  for (const pre of article.querySelectorAll('pre')) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'small copy';
    button.textContent = 'Copy';
    button.setAttribute('aria-label', `Copy this ${pre.dataset.lang || 'code'} block`);
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(pre.querySelector('code').textContent);
        button.textContent = 'Copied';
      } catch (err) {
        button.textContent = 'Copy failed: select the text instead';
      }
      setTimeout(() => { button.textContent = 'Copy'; }, 2000);
    });
    const wrap = document.createElement('div');
    wrap.className = 'code-block';
    pre.replaceWith(wrap);
    wrap.append(button, pre);
  }
}

function notFound(article, search) {
  article.innerHTML = `<h1>Part not found</h1><p class="callout bad" role="alert" data-testid="not-found">This guide has no part
    called <code>${esc(search.replace(/^\?/, '').split('&')[0])}</code>. Its parts are listed in the navigation;
    <a href="guide.html">the contents</a> describe each.</p>`;
  document.title = 'Part not found · uvws guide';
  document.getElementById('toc').innerHTML = '';
}

async function show() {
  const part = partFromQuery(location.search);
  const article = document.getElementById('doc');
  navLinks(part);
  if (part === null) {
    notFound(article, location.search);
    document.body.dataset.ready = 'not-found';
    return;
  }
  article.setAttribute('aria-busy', 'true');
  try {
    const res = await fetch(`/docs/${part}.md`, { cache: 'no-cache' });
    if (!res.ok) throw new Error(`GET /docs/${part}.md: ${res.status} ${res.statusText}`);
    const { html, headings } = render(await res.text());
    article.innerHTML = html;
    const title = headings.find((h) => h.level === 1);
    document.title = `${title ? title.text : part} · uvws guide`;
    toc(headings);
    addCopyButtons(article);
    highlightTarget(true);
  } catch (err) {
    article.innerHTML = `<p class="callout bad" role="alert">Could not load this part of the guide: ${esc(err.message)}.
      The guide's Markdown is served from <code>/docs/</code> by uvws; it is also readable as plain files in the
      repository's <code>docs/</code> folder.</p>`;
  } finally {
    article.removeAttribute('aria-busy');
    document.body.dataset.ready = part;
  }
}

if (typeof document !== 'undefined' && document.getElementById('doc')) {
  window.addEventListener('hashchange', () => highlightTarget(false));
  setupTheme();
  show();
}
