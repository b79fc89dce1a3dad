// One timeline of both directions: every message the page sent and received (not the inspector's
// traces), shown as UTF-8 (JSON pretty-printed), hex or base64, searchable, each copyable, and the
// whole session exportable as JSON.

import { h, hex, utf8, utf8Decode, base64, formatBytes } from './util.js';

const $ = (id) => document.getElementById(id);
const MAX_ENTRIES = 2000; // the oldest go first: a long session must not grow the page without end
const SHOWN_BYTES = 4096; // per entry on screen
const KEPT_BYTES = 1 << 20; // per entry for copy and export: a 16 MiB test message keeps its first MiB

const entries = [];

function render(entry, format) {
  const bytes = entry.bytes.subarray(0, SHOWN_BYTES);
  const more = entry.size > SHOWN_BYTES ? ` … (${formatBytes(entry.size)} in all)` : '';
  if (format === 'hex') return hex(bytes) + more;
  if (format === 'base64') return base64(bytes) + more;
  const text = utf8Decode(bytes);
  if (entry.kind === 'text' && !more) {
    try {
      const obj = JSON.parse(text);
      if (obj && typeof obj === 'object') return JSON.stringify(obj, null, 2);
    } catch { /* not JSON: as is */ }
  }
  return text + more;
}

function full(entry, format) {
  if (format === 'hex') return hex(entry.bytes);
  if (format === 'base64') return base64(entry.bytes);
  return utf8Decode(entry.bytes);
}

function format() {
  return document.querySelector('input[name="timeline-format"]:checked').value;
}

function matches(entry, needle) {
  if (!needle) return true;
  const n = needle.toLowerCase();
  return utf8Decode(entry.bytes).toLowerCase().includes(n) || hex(entry.bytes, '').includes(n.replace(/\s+/g, ''));
}

function item(entry) {
  const copy = h('button', { type: 'button', class: 'small', 'aria-label': `Copy message ${entry.n}` }, 'Copy');
  const li = h('li', { class: `tl tl-${entry.dir}`, dataset: { testid: 'timeline-entry', dir: entry.dir, kind: entry.kind } },
    h('span', { class: `dir ${entry.dir === 'sent' ? 'in' : 'out'}` }, entry.dir === 'sent' ? 'sent ↑' : 'received ↓'),
    ` ${entry.time} · connection ${entry.conn} · ${entry.kind}, ${formatBytes(entry.size)} `, copy,
    h('pre', { class: 'tl-body' }, render(entry, format())));
  copy.addEventListener('click', () => {
    const text = full(entry, format());
    const done = () => { copy.textContent = 'Copied'; };
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => { copy.textContent = 'Copy failed'; });
  });
  entry.li = li;
  return li;
}

function refresh() {
  const needle = $('timeline-search').value.trim();
  let shown = 0;
  for (const e of entries) {
    e.li.querySelector('pre').textContent = render(e, format());
    e.li.hidden = !matches(e, needle);
    if (!e.li.hidden) shown++;
  }
  $('timeline-count').textContent = needle ? `${shown} of ${entries.length}` : String(entries.length);
  $('timeline-empty').hidden = entries.length > 0;
}

/** Records one message: `dir` "sent" or "received", `data` a string, ArrayBuffer, typed array or Blob. */
export async function timelineAdd(conn, dir, data) {
  let kind = 'binary';
  let bytes;
  if (typeof data === 'string') {
    kind = 'text';
    bytes = utf8(data);
  } else if (data instanceof Blob) {
    bytes = new Uint8Array(await data.arrayBuffer());
  } else {
    bytes = new Uint8Array(data instanceof ArrayBuffer ? data : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  }
  const size = bytes.length;
  if (size > KEPT_BYTES) bytes = bytes.slice(0, KEPT_BYTES);
  const entry = { n: entries.length + 1, conn, dir, kind, bytes, size, time: new Date().toISOString() };
  entries.push(entry);
  $('timeline-list').append(item(entry));
  while (entries.length > MAX_ENTRIES) entries.shift().li.remove();
  const needle = $('timeline-search').value.trim();
  entry.li.hidden = !matches(entry, needle);
  $('timeline-count').textContent = String(entries.length);
  $('timeline-empty').hidden = true;
}

/** The session as JSON: each message with its direction, time, type and bytes (base64). */
export function timelineExport() {
  return JSON.stringify({
    exported: new Date().toISOString(),
    page: location.href,
    messages: entries.map((e) => ({ connection: e.conn, dir: e.dir, time: e.time, type: e.kind, size: e.size,
      truncated: e.size > e.bytes.length, base64: base64(e.bytes) })),
  }, null, 2);
}

export function initTimeline() {
  for (const r of document.querySelectorAll('input[name="timeline-format"]')) r.addEventListener('change', refresh);
  $('timeline-search').addEventListener('input', refresh);
  $('timeline-export').addEventListener('click', () => {
    const a = h('a', { href: URL.createObjectURL(new Blob([timelineExport()], { type: 'application/json' })), download: 'uvws-session.json' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  });
  $('timeline-clear').addEventListener('click', () => {
    for (const e of entries) e.li.remove();
    entries.length = 0;
    refresh();
  });
}
