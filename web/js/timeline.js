// The message table as one timeline of both directions: previews as UTF-8, hex or base64, JSON
// pretty-printed on demand, a search, a copy button per message, and the whole session exported
// as JSON. main.js adds a record per sent or received message; this module owns their previews.

import { h, utf8, utf8Decode, hex, base64, quote } from './util.js';

const PREVIEW_BYTES = 16;
const records = []; // {row, cell, dir, kind, size, text?, head?, name?, seq, conn, t}
let mode = 'auto';
let query = '';

function bytesOf(rec) {
  if (rec.kind === 'text') return utf8(rec.text);
  return rec.head || null;
}

/** The preview of a record in a mode: auto (text as text, binary as hex), utf8, hex or base64. */
export function previewText(rec, how = mode) {
  if (rec.kind === 'text' && (how === 'auto' || how === 'utf8')) return quote(rec.text, 80);
  if (how === 'auto' && rec.name) return JSON.stringify(rec.name);
  const bytes = bytesOf(rec);
  if (!bytes) return rec.size ? '…' : '(empty)';
  if (!rec.size) return '(empty)';
  const shown = bytes.subarray(0, how === 'base64' ? 48 : PREVIEW_BYTES);
  const more = rec.size > shown.length ? ' …' : '';
  if (how === 'utf8') return `${quote(utf8Decode(shown), 80)}${more}`;
  if (how === 'base64') return `${base64(shown)}${more}`;
  return `${hex(shown)}${more}`;
}

/** JSON text as an indented string, or null when the text is not a JSON object or array. */
export function prettyJson(text) {
  if (!/^\s*[[{]/.test(text)) return null;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return null;
  }
}

function copyText(rec) {
  if (rec.kind === 'text') return rec.text;
  const bytes = bytesOf(rec);
  return bytes ? hex(bytes) : '';
}

function searchText(rec) {
  return `${rec.kind === 'text' ? rec.text : ''} ${previewText(rec)}`.toLowerCase();
}

/** (Re)draws a record's preview cell in the current mode. */
export function render(rec) {
  const text = h('span', { class: 'preview-text' }, previewText(rec));
  const tools = h('span', { class: 'row-tools' },
    h('button', {
      type: 'button', class: 'small copy', title: 'copy the message (binary: the bytes shown, in hex)',
      onclick: async (e) => {
        try {
          await navigator.clipboard.writeText(copyText(rec));
          e.target.textContent = 'copied';
        } catch {
          e.target.textContent = 'cannot copy';
        }
      },
    }, 'copy'));
  const pretty = rec.kind === 'text' ? prettyJson(rec.text) : null;
  if (pretty) {
    const pre = h('pre', { class: 'json', hidden: true, dataset: { testid: 'pretty-json' } }, pretty);
    tools.prepend(h('button', {
      type: 'button', class: 'small', 'aria-expanded': 'false', title: 'show the JSON indented',
      onclick: (e) => {
        pre.hidden = !pre.hidden;
        e.target.setAttribute('aria-expanded', String(!pre.hidden));
      },
    }, '{ }'));
    rec.cell.replaceChildren(text, tools, pre);
  } else {
    rec.cell.replaceChildren(text, tools);
  }
  rec.row.classList.toggle('no-match', query !== '' && !searchText(rec).includes(query));
}

/** Registers a message row; `rec.cell` is its preview cell. */
export function addRecord(rec) {
  records.push(rec);
  render(rec);
  return rec;
}

export function setMode(how) {
  mode = how;
  for (const rec of records) render(rec);
}

export function setQuery(text) {
  query = text.trim().toLowerCase();
  for (const rec of records) rec.row.classList.toggle('no-match', query !== '' && !searchText(rec).includes(query));
  return records.filter((rec) => !rec.row.classList.contains('no-match')).length;
}

export function clearRecords() {
  records.length = 0;
}

/** The session as a JSON-able object: messages both ways, the event log, the inspector's traces. */
export function sessionJson({ events, traces }) {
  return {
    exported: new Date().toISOString(),
    page: location.href,
    messages: records.map((rec) => ({
      conn: rec.conn, dir: rec.dir, seq: rec.seq, type: rec.kind, size: rec.size, t_ms: Math.round(rec.t * 10) / 10,
      ...(rec.kind === 'text' ? { text: rec.text } : { first_bytes_hex: rec.head ? hex(rec.head, '') : null }),
      ...(rec.name ? { file: rec.name } : {}),
    })),
    events,
    traces,
  };
}
