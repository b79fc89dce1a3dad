// The inspector view: the server's /inspect route sends JSON text messages describing the
// opening handshake and every frame it received ("in") or sent ("out"). This module recognises
// them and renders the frame table, a bit-by-bit view of one frame and the handshake.

import { h, hex, fromHex, hexSpaced, groupDigits, utf8, utf8Decode, base64 } from './util.js';

const OPCODES = {
  0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong',
};

/** Parses a text message; returns the trace object if it is one ({"uvws":"handshake"|"frame"|"command",...}), else null. */
export function parseTrace(text) {
  if (typeof text !== 'string' || !text.startsWith('{"uvws":')) return null;
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    return null;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return null;
  if (obj.uvws === 'handshake' && obj.request && obj.response) return obj;
  if (obj.uvws === 'frame' && (obj.dir === 'in' || obj.dir === 'out') && typeof obj.opcode === 'number') return obj;
  if (obj.uvws === 'command' && typeof obj.do === 'string' && typeof obj.ok === 'boolean') return obj;
  return null;
}

/** True for frames that end a text or binary message (what an echo follows). */
export function endsDataMessage(frame) {
  return frame.fin && (frame.opcode === 0 || frame.opcode === 1 || frame.opcode === 2);
}

/** One line describing a trace, for the event log. */
export function traceSummary(trace) {
  if (trace.uvws === 'handshake') {
    return `trace: handshake ${trace.request.method} ${trace.request.target} → ${trace.response.status}`;
  }
  if (trace.uvws === 'command') {
    return `command ${trace.do}: ${trace.ok ? trace.detail : `refused: ${trace.error}`}`;
  }
  return `trace: frame ${trace.dir} ${trace.op}${trace.fin ? '' : ' (FIN 0)'} length ${trace.len}` +
    `${trace.masked ? ' masked' : ''}${isCompressed(trace) ? ' compressed' : ''}`;
}

/** What a frame's payload means, as far as the first bytes tell: text, close code and reason. */
export function payloadMeaning(frame) {
  const bytes = fromHex(frame.payload);
  const more = frame.truncated ? '…' : '';
  if (isCompressed(frame)) return 'DEFLATE-compressed (RSV1): not readable as is';
  if (frame.opcode === 1) return `"${utf8Decode(bytes)}${more}"`;
  if (frame.opcode === 8) {
    if (frame.len === 0) return 'no status code';
    if (bytes.length >= 2) {
      const code = (bytes[0] << 8) | bytes[1];
      const reason = utf8Decode(bytes.subarray(2));
      return `code ${code}${reason || more ? ` reason "${reason}${more}"` : ''}`;
    }
  }
  if ((frame.opcode === 9 || frame.opcode === 10) && bytes.length) return `"${utf8Decode(bytes)}${more}"`;
  return null;
}

/** RSV1 on the first frame of a message means permessage-deflate compressed it (RFC 7692). */
export function isCompressed(frame) {
  return Boolean(frame.rsv1) && (frame.opcode === 1 || frame.opcode === 2);
}

/**
 * Inflates a whole permessage-deflate payload with the browser's own DecompressionStream: the
 * sender removed the trailing 00 00 ff ff of its flush (RFC 7692 section 7.2.1), so put it back,
 * then add an empty final block (03 00) to end the stream. Null when it cannot be done alone,
 * e.g. when the sender kept its context and the data refers to earlier messages.
 */
export async function inflateMessage(bytes) {
  if (typeof DecompressionStream !== 'function') return null;
  const input = new Uint8Array(bytes.length + 6);
  input.set(bytes);
  input.set([0x00, 0x00, 0xff, 0xff, 0x03, 0x00], bytes.length);
  try {
    const stream = new Blob([input]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}

/** Fills `el` with what a small compressed frame inflates to, when the trace holds all of it. */
function explainCompressed(frame, el) {
  if (!isCompressed(frame) || frame.truncated || !frame.fin) return;
  inflateMessage(fromHex(frame.payload)).then((plain) => {
    if (!plain) {
      el.textContent = 'DEFLATE-compressed (RSV1); it refers to earlier messages (context takeover), so it cannot be inflated alone';
      return;
    }
    el.textContent = `DEFLATE-compressed (RSV1), inflates to ${plain.length} bytes` +
      (frame.opcode === 1 ? `: "${utf8Decode(plain)}"` : `: ${hex(plain.subarray(0, 16))}${plain.length > 16 ? ' …' : ''}`);
    el.dataset.inflated = 'true';
  });
}

function lenField(frame) {
  const bits = frame.len_bits;
  const label = bits === 7 ? '7-bit' : bits === 16 ? '16-bit' : '64-bit';
  const hint = bits === 7 ? `length ${frame.len} fits in the 7 bits of byte 1`
    : bits === 16 ? 'byte 1 says 126: the next 2 bytes hold the length'
      : 'byte 1 says 127: the next 8 bytes hold the length';
  return h('span', { class: `len-bits b${bits}`, title: hint, dataset: { bits } }, label);
}

function yesNo(value, yesClass = 'yes') {
  return h('span', { class: value ? yesClass : 'no' }, value ? 'yes' : 'no');
}

/** Hex bytes as nowrap groups of 8, so long dumps wrap between groups only. */
function hexGroups(bytes, cls) {
  const parts = [];
  for (let i = 0; i < bytes.length; i += 8) {
    if (i) parts.push(' ');
    parts.push(h('span', { class: `grp${cls ? ` ${cls}` : ''}` }, hex(bytes.subarray(i, i + 8))));
  }
  return parts;
}

/** The header bytes, coloured by part: the two fixed bytes, the extended length, the masking key. */
function headerHex(frame) {
  const bytes = fromHex(frame.header);
  const ext = frame.len_bits === 16 ? 2 : frame.len_bits === 64 ? 8 : 0;
  const parts = [h('span', { class: 'grp f-base', title: 'FIN, RSV, opcode | MASK, 7-bit length' }, hex(bytes.subarray(0, 2)))];
  if (ext) parts.push(' ', h('span', { class: 'grp f-len', title: `extended length (${ext * 8}-bit)` }, hex(bytes.subarray(2, 2 + ext))));
  if (frame.masked) parts.push(' ', h('span', { class: 'grp f-mask', title: 'masking key' }, hex(bytes.subarray(2 + ext, 6 + ext))));
  return parts;
}

function payloadCell(frame) {
  const more = frame.truncated ? h('span', { class: 'muted', title: `${frame.len} bytes in all; the trace carries the first 16` }, ' …') : null;
  if (!frame.payload) return [h('span', { class: 'muted' }, frame.len ? '' : '(empty)')];
  const out = [h('div', { class: 'plain' }, ...hexGroups(fromHex(frame.payload)), more)];
  if (frame.masked && frame.masked_payload) {
    out.push(h('div', { class: 'wire', title: 'the same bytes as sent, XORed with the masking key' },
      h('span', { class: 'lbl' }, 'masked '), ...hexGroups(fromHex(frame.masked_payload)), more ? more.cloneNode(true) : null));
  }
  const meaning = payloadMeaning(frame);
  if (meaning) {
    const el = h('div', { class: 'meaning' }, meaning);
    explainCompressed(frame, el);
    out.push(el);
  }
  return out;
}

/** Where a message's row is: the frame table links each "out" message to the received message. */
export function messageAnchor(conn, dir, message) {
  return dir === 'out' ? `msg-${conn}-${message}` : null;
}

/** Under a data frame's length: its message, and on a message's last frame the size before compression. */
function messageNote(frame, conn) {
  if (typeof frame.message !== 'number') return null;
  const anchor = messageAnchor(conn, frame.dir, frame.message);
  const label = `message ${frame.message}`;
  const parts = [anchor ? h('a', { href: `#${anchor}`, class: 'msg-link', title: 'the message this frame carried' }, label) : label];
  if (typeof frame.message_len === 'number') {
    if (frame.message_len !== frame.len || frame.opcode === 0) {
      parts.push(h('span', { class: 'msg-len', dataset: { testid: 'message-len' } },
        `: ${groupDigits(frame.message_len)} B${frame.rsv1 || frame.opcode === 0 ? '' : ' in all'}`,
        frame.rsv1 ? ' before compression' : ''));
    }
  }
  return h('div', { class: 'muted' }, ...parts);
}

/** A <tr> for the frame table. `onSelect(frame, row)` is called by the row's button; `conn` numbers the page's connections. */
export function frameRow(frame, index, onSelect, conn = 0) {
  const rsv = `${+frame.rsv1}${+frame.rsv2}${+frame.rsv3}`;
  const selectBtn = h('button', {
    type: 'button', class: 'row-select', 'aria-pressed': 'false',
    'aria-label': `Show the anatomy of frame ${index} (${frame.dir} ${frame.op})`,
  }, String(index));
  const row = h('tr', {
    class: `frame dir-${frame.dir} op-${frame.op}`,
    dataset: {
      testid: 'frame-row', index, dir: frame.dir, op: frame.op, opcode: frame.opcode,
      masked: frame.masked, len: frame.len, lenBits: frame.len_bits, fin: frame.fin, rsv1: frame.rsv1,
      ...(frame.message === undefined ? {} : { message: frame.message }),
      ...(frame.message_len === undefined ? {} : { messageLen: frame.message_len }),
    },
    id: frame.message_len !== undefined ? `frame-${conn}-${frame.dir}-${frame.message}` : undefined,
  },
  h('td', null, selectBtn),
  h('td', { class: 'num' }, String(frame.t)),
  h('td', null, h('span', { class: `dir ${frame.dir}`, title: frame.dir === 'in' ? 'browser → server' : 'server → browser' },
    frame.dir === 'in' ? 'in ↑' : 'out ↓')),
  h('td', { class: 'c' }, frame.fin ? '1' : h('strong', null, '0')),
  h('td', { class: 'c mono' }, rsv === '000' ? rsv : h('strong', { class: 'rsv-set', title: frame.rsv1 ? 'RSV1 = 1: compressed with permessage-deflate' : 'reserved bits set' }, rsv),
    isCompressed(frame) ? h('div', { class: 'zip' }, 'deflate') : null),
  h('td', null, h('span', { class: `op op-${frame.op}` }, `${frame.opcode} ${frame.op}`)),
  h('td', { class: 'c' }, yesNo(frame.masked)),
  h('td', { class: 'mono' }, frame.mask ? h('span', { class: 'f-mask' }, hex(fromHex(frame.mask))) : h('span', { class: 'muted' }, '—')),
  h('td', { class: 'num' }, groupDigits(frame.len), messageNote(frame, conn)),
  h('td', null, lenField(frame)),
  h('td', { class: 'mono hexcell header-hex' }, ...headerHex(frame)),
  h('td', { class: 'mono hexcell payload-hex' }, ...payloadCell(frame)));
  selectBtn.addEventListener('click', () => onSelect(frame, row));
  return row;
}

function bitCells(byte) {
  return Array.from({ length: 8 }, (_, i) => (byte >> (7 - i)) & 1);
}

/** The bit-by-bit anatomy of one frame's header and first payload bytes. */
export function frameAnatomy(frame, index) {
  const header = fromHex(frame.header);
  const b0 = header[0] ?? 0;
  const b1 = header[1] ?? 0;
  const len7 = b1 & 0x7f;
  const opcode = b0 & 0x0f;
  const bits0 = bitCells(b0);
  const bits1 = bitCells(b1);
  const cell = (v, cls) => h('td', { class: `bit ${cls}` }, String(v));

  const bitTable = h('table', { class: 'bits', 'aria-label': 'The first two header bytes, bit by bit' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'byte'), h('th', { scope: 'col' }, 'hex'),
      ...Array.from({ length: 8 }, (_, i) => h('th', { scope: 'col', class: 'bitno' }, String(i))))),
    h('tbody', null,
      h('tr', null, h('th', { scope: 'row' }, '0'), h('td', { class: 'mono' }, hex([b0])),
        cell(bits0[0], 'f-fin'), cell(bits0[1], 'f-rsv'), cell(bits0[2], 'f-rsv'), cell(bits0[3], 'f-rsv'),
        ...bits0.slice(4).map((v) => cell(v, 'f-op'))),
      h('tr', { class: 'labels' }, h('td'), h('td'),
        h('td', { class: 'f-fin' }, `FIN ${bits0[0]}`), h('td', { class: 'f-rsv', colspan: 3 }, `RSV ${bits0.slice(1, 4).join('')}${bits0[1] ? ' deflate' : ''}`),
        h('td', { class: 'f-op', colspan: 4 }, `opcode ${opcode} = ${OPCODES[opcode] || 'reserved'}`)),
      h('tr', null, h('th', { scope: 'row' }, '1'), h('td', { class: 'mono' }, hex([b1])),
        cell(bits1[0], 'f-mask'), ...bits1.slice(1).map((v) => cell(v, 'f-len'))),
      h('tr', { class: 'labels' }, h('td'), h('td'),
        h('td', { class: 'f-mask' }, `MASK ${bits1[0]}`),
        h('td', { class: 'f-len', colspan: 7 }, len7 <= 125 ? `length ${len7}`
          : len7 === 126 ? '126: 16-bit length follows' : '127: 64-bit length follows'))));

  const facts = h('dl', { class: 'facts' });
  let off = 2;
  if (len7 === 126 || len7 === 127) {
    const n = len7 === 126 ? 2 : 8;
    const ext = header.subarray(2, 2 + n);
    facts.append(h('dt', null, `bytes 2–${1 + n}`),
      h('dd', null, `extended length, ${n * 8}-bit big-endian: `, h('code', { class: 'f-len' }, hex(ext)), ` = ${groupDigits(frame.len)}`,
        len7 === 127 && frame.len <= 65535 ? ' (could have used 16 bits)' : ''));
    off += n;
  } else {
    facts.append(h('dt', null, 'length'), h('dd', null, `${frame.len}, in byte 1 (no extended length)`));
  }
  if (frame.masked) {
    facts.append(h('dt', null, `bytes ${off}–${off + 3}`),
      h('dd', null, 'masking key: ', h('code', { class: 'f-mask' }, hexSpaced(frame.mask)), ', chosen at random by the browser for this frame'));
    off += 4;
  } else {
    facts.append(h('dt', null, 'mask'), h('dd', null, 'none: a server never masks'));
  }
  facts.append(h('dt', null, 'in all'), h('dd', null, `${off} header bytes, then ${groupDigits(frame.len)} payload bytes`));
  if (isCompressed(frame)) {
    facts.append(h('dt', null, 'RSV1 = 1'), h('dd', null, 'permessage-deflate compressed this message: the length and bytes are the compressed ones'));
  } else if (frame.rsv1 && frame.opcode === 0) {
    facts.append(h('dt', null, 'RSV1 = 1'), h('dd', null, 'not allowed on a continuation frame'));
  }
  const meaning = payloadMeaning(frame);
  if (meaning) {
    const dd = h('dd', null, meaning);
    explainCompressed(frame, dd);
    facts.append(h('dt', null, 'payload says'), dd);
  }

  const payload = fromHex(frame.payload);
  let xorTable = null;
  if (payload.length) {
    const wire = frame.masked ? fromHex(frame.masked_payload) : payload;
    const key = frame.masked ? fromHex(frame.mask) : null;
    const rows = [h('tr', null, h('th', { scope: 'row' }, 'offset'), ...Array.from(payload, (_, i) => h('td', null, String(i))))];
    if (frame.masked) {
      rows.push(h('tr', { class: 'wire' }, h('th', { scope: 'row' }, 'on the wire'), ...Array.from(wire, (b) => h('td', null, hex([b])))));
      rows.push(h('tr', { class: 'key' }, h('th', { scope: 'row' }, 'XOR key[i mod 4]'), ...Array.from(payload, (_, i) => h('td', null, hex([key[i & 3]])))));
    }
    rows.push(h('tr', { class: 'plain' }, h('th', { scope: 'row' }, frame.masked ? '= payload' : 'payload'),
      ...Array.from(payload, (b) => h('td', null, hex([b])))));
    rows.push(h('tr', { class: 'chars' }, h('th', { scope: 'row' }, 'as ASCII'),
      ...Array.from(payload, (b) => h('td', null, b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '·'))));
    xorTable = h('div', { class: 'table-scroll' }, h('table', { class: 'xor', 'aria-label': 'First payload bytes' },
      h('tbody', null, ...rows)));
  }

  return h('div', null,
    h('h3', null, `Frame ${index}: `, h('span', { class: `dir ${frame.dir}` }, frame.dir === 'in' ? 'in ↑ browser → server' : 'out ↓ server → browser'),
      ` ${frame.op}, ${groupDigits(frame.len)} bytes`),
    h('div', { class: 'anatomy' }, bitTable, facts),
    xorTable ? h('h4', null, frame.masked ? `Unmasking the first ${payload.length} payload bytes` : `First ${payload.length} payload bytes`) : null,
    xorTable);
}

const WS_HEADERS = /^(upgrade|connection|sec-websocket-[a-z]+|host|origin)$/i;

function httpText(firstLine, headers) {
  const pre = [h('span', { class: 'start-line' }, firstLine), '\n'];
  for (const [name, value] of headers) {
    pre.push(h('span', { class: WS_HEADERS.test(name) ? 'hname ws' : 'hname' }, name), ': ',
      h('span', { class: 'hvalue' }, value), '\n');
  }
  return pre;
}

function headerValue(headers, wanted) {
  const found = headers.find(([name]) => name.toLowerCase() === wanted.toLowerCase());
  return found ? found[1] : null;
}

/** Fills the handshake view from a {"uvws":"handshake"} trace. */
export function renderHandshake(hs, els) {
  const { request, response, accept } = hs;
  els.request.replaceChildren(...httpText(`${request.method} ${request.target} ${request.version}`, request.headers));
  els.response.replaceChildren(...httpText(`HTTP/1.1 ${response.status} Switching Protocols`, response.headers));

  const steps = [];
  const sentAccept = headerValue(response.headers, 'Sec-WebSocket-Accept');
  if (accept) {
    let keyBytes = '';
    try {
      keyBytes = hex(Uint8Array.from(atob(accept.key), (c) => c.charCodeAt(0)));
    } catch { /* not base64: shown as is */ }
    steps.push(
      h('li', null, h('span', { class: 'step-label' }, 'The browser’s ', h('code', null, 'Sec-WebSocket-Key'), ' (16 random bytes, base64)'),
        h('code', { class: 'val k', dataset: { testid: 'accept-key' } }, accept.key),
        keyBytes ? h('span', { class: 'aside' }, `= ${keyBytes}`) : null),
      h('li', null, h('span', { class: 'step-label' }, 'Append the fixed GUID from RFC 6455'),
        h('code', { class: 'val g', dataset: { testid: 'accept-guid' } }, accept.guid)),
      h('li', null, h('span', { class: 'step-label' }, `Key + GUID (${accept.concatenated.length} ASCII bytes)`),
        h('code', { class: 'val', dataset: { testid: 'accept-concatenated' } },
          h('span', { class: 'k' }, accept.concatenated.slice(0, accept.key.length)),
          h('span', { class: 'g' }, accept.concatenated.slice(accept.key.length)))),
      h('li', null, h('span', { class: 'step-label' }, 'SHA-1 of that (20 bytes, hex)'),
        h('code', { class: 'val', dataset: { testid: 'accept-sha1' } }, accept.sha1)),
      h('li', null, h('span', { class: 'step-label' }, 'Base64 of the 20 bytes = ', h('code', null, 'Sec-WebSocket-Accept')),
        h('code', { class: 'val a', dataset: { testid: 'accept-value' } }, accept.accept),
        sentAccept === accept.accept ? h('span', { class: 'ok' }, '✓ the response header carries it')
          : h('span', { class: 'bad' }, `✗ the response header says ${sentAccept}`)));
  } else {
    steps.push(h('li', null, 'The server did not describe the accept computation.'));
  }
  els.steps.replaceChildren(...steps);
  els.check.textContent = '';
  if (accept) verifyAccept(accept, els.check);
}

// Recomputes the accept value in the browser with Web Crypto (available in secure contexts,
// which include http://127.0.0.1 and http://localhost).
async function verifyAccept(accept, out) {
  if (!globalThis.crypto || !crypto.subtle) {
    out.textContent = 'This page could not recompute it: Web Crypto needs a secure context (https, or localhost).';
    return;
  }
  try {
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', utf8(accept.key + accept.guid)));
    const same = hex(digest, '') === accept.sha1 && base64(digest) === accept.accept;
    out.className = `check-line ${same ? 'ok' : 'bad'}`;
    out.textContent = same
      ? `✓ Recomputed in this page with crypto.subtle.digest('SHA-1'): ${base64(digest)}, the same value. Your browser did this check too before firing open.`
      : `✗ This page computes ${base64(digest)} (SHA-1 ${hex(digest, '')}), not what the server sent.`;
  } catch (err) {
    out.textContent = `Could not recompute: ${err.name}: ${err.message}`;
  }
}
