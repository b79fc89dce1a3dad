// The frame decoder: bytes pasted as hex (from Wireshark, a capture, the guide) taken apart into
// the same objects the server's /inspect route sends ({"uvws":"frame",...}, see inspector.js), so
// the page renders them with the inspector's own code. It also checks them as uvws does
// (src/proto/frame.c and src/proto/ws.c): each problem is one the server would close with 1002 for.
// No imports and no DOM, so Node's test runner can load it as it is (test/browser/decode.test.js).

const OP_NAMES = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };
const SHOWN = 16; // payload bytes per frame in the description, as /inspect reports

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/**
 * Bytes from hex as people paste it: "81 85 37 fa", "0x81,0x85", "\x81\x85", "8185 37fa" with line
 * breaks. Throws an Error saying what is wrong for anything else.
 */
export function parseHex(text) {
  const clean = String(text).replace(/0x|\\x/gi, ' ').replace(/[\s,;:]+/g, '');
  const bad = /[^0-9a-f]/i.exec(clean);
  if (bad) throw new Error(`"${bad[0]}" is not a hex digit`);
  if (clean.length % 2) throw new Error(`odd number of hex digits (${clean.length}): each byte is two`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.substr(2 * i, 2), 16);
  return out;
}

/** The header at `bytes[off]`: {size, len7, len, lenBits, masked, mask} or {need} or {error}. */
function header(bytes, off) {
  const left = bytes.length - off;
  if (left < 2) return { need: 2 - left };
  const b1 = bytes[off + 1];
  const len7 = b1 & 0x7f;
  const masked = (b1 & 0x80) !== 0;
  const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  const size = 2 + ext + (masked ? 4 : 0);
  if (left < size) return { need: size - left };
  let len = len7;
  if (ext) {
    len = 0;
    for (let i = 0; i < ext; i++) len = len * 256 + bytes[off + 2 + i];
    if (ext === 8 && bytes[off + 2] & 0x80) return { error: '64-bit payload length with the top bit set (RFC 6455 §5.2): the server closes with 1002' };
  }
  const mask = masked ? bytes.subarray(off + 2 + ext, off + size) : null;
  return { size, len7, len, lenBits: ext === 2 ? 16 : ext === 8 ? 64 : 7, masked, mask };
}

/** What uvws (src/proto/ws.c) says of this frame given the message in progress; updates `msg`. */
function problems(f, msg, deflate) {
  const out = [];
  const control = f.opcode >= 8;
  if (f.rsv2 || f.rsv3) out.push('RSV2/RSV3 set: no extension defines them');
  if (f.rsv1 && !deflate) out.push('RSV1 set: only allowed once permessage-deflate was agreed');
  if (control) {
    if (f.opcode > 10) out.push(`reserved control opcode ${f.opcode}`);
    if (f.rsv1) out.push('RSV1 on a control frame');
    if (!f.fin) out.push('fragmented control frame (FIN 0)');
    if (f.len > 125) out.push(`control frame payload of ${f.len} bytes (at most 125)`);
    return out;
  }
  if (f.opcode > 2) {
    out.push(`reserved data opcode ${f.opcode}`);
    return out;
  }
  if (f.opcode === 0) {
    if (!msg.open) out.push('continuation frame without a message');
    if (f.rsv1) out.push('RSV1 on a continuation frame');
  } else if (msg.open) {
    out.push('new message inside a fragmented message');
  }
  if (f.opcode !== 0 || msg.open) msg.open = !f.fin; // a first frame opens a message, FIN ends it
  return out;
}

/**
 * Takes `bytes` apart into frames. Returns {frames, error, rest}: frames in the /inspect format,
 * each with `offset` (where it starts), `problems` (why uvws would close with 1002), `notes`
 * (allowed but worth knowing) and `complete` (all its payload bytes are there); `error` stops the
 * decoding (a header uvws rejects, or missing header bytes); `rest` counts undecoded bytes.
 * `deflate`: permessage-deflate agreed, so RSV1 on a first frame is fine (default true).
 */
export function decodeFrames(bytes, { deflate = true } = {}) {
  const frames = [];
  const msg = { open: false };
  let off = 0;
  while (off < bytes.length) {
    const hd = header(bytes, off);
    if (hd.error) return { frames, error: `at byte ${off}: ${hd.error}`, rest: bytes.length - off };
    if (hd.need) return { frames, error: `at byte ${off}: the header needs ${hd.need} more byte(s)`, rest: bytes.length - off };
    const b0 = bytes[off];
    const start = off + hd.size;
    const have = Math.min(hd.len, bytes.length - start);
    const wire = bytes.subarray(start, start + Math.min(have, SHOWN));
    const plain = hd.masked ? wire.map((b, i) => b ^ hd.mask[i & 3]) : wire;
    const f = {
      uvws: 'frame', dir: hd.masked ? 'in' : 'out', t: '—',
      fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, rsv2: (b0 & 0x20) !== 0, rsv3: (b0 & 0x10) !== 0,
      opcode: b0 & 0x0f, op: OP_NAMES[b0 & 0x0f] || 'reserved',
      masked: hd.masked, mask: hd.masked ? hex(hd.mask) : null,
      len: hd.len, len_bits: hd.lenBits,
      header: hex(bytes.subarray(off, start)), payload: hex(plain), truncated: hd.len > plain.length,
    };
    if (hd.masked) f.masked_payload = hex(wire);
    f.offset = off;
    f.complete = have === hd.len;
    f.problems = problems(f, msg, deflate);
    f.notes = [];
    if ((hd.lenBits === 16 && hd.len < 126) || (hd.lenBits === 64 && hd.len < 65536)) {
      f.notes.push(`length ${hd.len} in ${hd.lenBits} bits: RFC 6455 §5.2 asks for the shortest encoding (uvws accepts it)`);
    }
    if (!f.complete) f.notes.push(`only ${have} of its ${hd.len} payload bytes were pasted`);
    frames.push(f);
    off = start + have;
  }
  return { frames, error: null, rest: 0 };
}
