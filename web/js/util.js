// Small helpers shared by the page's modules: DOM building, bytes and hex, number formatting.

/** Creates an element: h('td', {class: 'num', dataset: {x: 1}}, 'text', childNode, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'text') el.textContent = value;
      else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const utf8Encoder = new TextEncoder();

/** The UTF-8 bytes of a string. */
export function utf8(text) {
  return utf8Encoder.encode(text);
}

/** Decodes UTF-8, replacing invalid (or cut-off) sequences with U+FFFD. */
export function utf8Decode(bytes) {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

/** Lower-case hex of bytes, space-separated by default: "68 65 6c". */
export function hex(bytes, sep = ' ') {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(sep);
}

/** Bytes from a hex string ("8185a5a8"); spaces are ignored. */
export function fromHex(text) {
  const clean = (text || '').replace(/\s+/g, '');
  const out = new Uint8Array(clean.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(2 * i, 2), 16);
  return out;
}

/** "de ad be ef" grouped by `group` bytes for long dumps. */
export function hexSpaced(hexText) {
  return (hexText || '').replace(/(..)(?!$)/g, '$1 ');
}

/** 70000 -> "70 000" (thin groups, readable in tables). */
export function groupDigits(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
}

/** Byte count for humans: "5 B", "70 000 B (68.4 KiB)". */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${groupDigits(n)} B (${v.toFixed(v < 10 ? 1 : 0)} ${units[u]})`;
}

/** Milliseconds with sensible precision. */
export function formatMs(ms) {
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A URL or header value with break opportunities after / ; , ? & so a narrow screen breaks it there. */
export function breakable(text) {
  const out = document.createDocumentFragment();
  for (const part of String(text).split(/(?<=[/;,?&]\s*)(?=\S)/)) out.append(part, document.createElement('wbr'));
  return out;
}

/** Wall-clock time of day with milliseconds: "14:03:07.123". */
export function clock(date = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`;
}

/** Random bytes of any size (getRandomValues fills at most 65 536 bytes per call). */
export function randomBytes(size) {
  const out = new Uint8Array(size);
  for (let off = 0; off < size; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(size, off + 65536)));
  }
  return out;
}

/** Standard base64 of bytes. */
export function base64(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** A string quoted for display, shortened to `max` characters, control characters made visible. */
export function quote(text, max = 60) {
  let shown = text.length > max ? `${text.slice(0, max)}…` : text;
  shown = shown.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '↵' : c === '\t' ? '⇥' : '·'));
  return `"${shown}"`;
}

/** The names the WebSocket API gives its readyState values. */
export const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];

/** The close codes a learner will meet, from RFC 6455 section 7.4.1 and the IANA registry. */
export const CLOSE_CODES = {
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status code received; never sent on the wire',
  1006: 'abnormal closure: no close frame; never sent on the wire',
  1007: 'invalid payload data, e.g. text that is not UTF-8',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'mandatory extension missing',
  1011: 'internal server error',
  1015: 'TLS handshake failure; never sent on the wire',
};

/** A short meaning for a close code. */
export function closeCodeMeaning(code) {
  if (CLOSE_CODES[code]) return CLOSE_CODES[code];
  if (code >= 3000 && code <= 3999) return 'registered for libraries and frameworks';
  if (code >= 4000 && code <= 4999) return 'private use by applications';
  return 'reserved';
}
