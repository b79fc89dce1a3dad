'use strict';
// The page's frame decoder (web/js/decode.js) against the engine's own test vectors: the byte
// arrays of test/unit/test_frame.c (RFC 6455 section 5.7 examples, extended and top-bit lengths)
// and test/unit/test_inspect.c (the /inspect description the page renders), read from those C
// files so both sides test the same bytes. Node only, no browser.
// Run: node --test test/browser/decode.test.js

const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { importBrowserModule, ROOT } = require('./helper');

// The bytes of `uint8_t name[] = {...}` inside C function `fn` of test/unit/<file>.
function cVector(file, fn, name) {
  const src = fs.readFileSync(path.join(ROOT, 'test', 'unit', file), 'utf8');
  const start = src.indexOf(`static void ${fn}(`);
  assert.ok(start >= 0, `${file}: no function ${fn}`);
  const body = src.slice(start, src.indexOf('\n}\n', start));
  const m = new RegExp(`uint8_t ${name}\\[\\] = \\{([^}]*)\\}`).exec(body);
  assert.ok(m, `${file}: ${fn} has no array ${name}`);
  return Uint8Array.from(m[1].split(',').map((s) => s.trim()).filter(Boolean).map((s) => Number(s)));
}

const concat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));
const ascii = (s) => Uint8Array.from(Buffer.from(s, 'latin1'));

describe('frame decoder (web/js/decode.js)', () => {
  let d;
  before(async () => { d = await importBrowserModule(path.join(ROOT, 'web', 'js', 'decode.js')); });

  const one = (bytes) => {
    const r = d.decodeFrames(bytes);
    assert.equal(r.error, null);
    assert.equal(r.frames.length, 1);
    return r.frames[0];
  };

  it('RFC 6455 5.7: an unmasked "Hello" from the server', () => {
    const f = one(cVector('test_frame.c', 'test_rfc_unmasked_hello', 'want'));
    assert.deepEqual([f.dir, f.fin, f.opcode, f.op, f.masked, f.mask, f.len, f.len_bits, f.header, f.payload, f.truncated],
      ['out', true, 1, 'text', false, null, 5, 7, '8105', '48656c6c6f', false]);
    assert.deepEqual(f.problems, []);
    assert.equal(f.complete, true);
  });

  it('test_inspect.c masked_hello_in: the same description /inspect gives, field by field', () => {
    const header = cVector('test_inspect.c', 'masked_hello_in', 'header');
    const f = one(concat(header, cVector('test_frame.c', 'test_rfc_masked_hello', 'want').subarray(header.length)));
    // the values test_inspect.c asserts for uvws_app_inspect_describe()
    for (const [k, v] of Object.entries({
      uvws: 'frame', dir: 'in', fin: true, rsv1: false, opcode: 1, op: 'text', masked: true, mask: '37fa213d',
      len: 5, len_bits: 7, header: '818537fa213d', payload: '48656c6c6f', masked_payload: '7f9f4d5158', truncated: false,
    })) assert.equal(f[k], v, k);
  });

  it('test_inspect.c long_binary_out: 64-bit length, the first 16 bytes only', () => {
    const f = one(concat(cVector('test_inspect.c', 'long_binary_out', 'header'), new Uint8Array(16).fill(0xab)));
    for (const [k, v] of Object.entries({
      // RSV1 false: that test sets f.rsv = 0x40 beside header bytes whose first byte, 0x82, has no RSV1.
      dir: 'out', rsv1: false, rsv2: false, op: 'binary', masked: false, mask: null, len: 70000, len_bits: 64,
      header: '827f0000000000011170', payload: 'abababababababababababababababab', truncated: true, complete: false,
    })) assert.equal(f[k], v, k);
    assert.equal(f.masked_payload, undefined);
    assert.deepEqual(f.problems, []);
    const rsv1 = concat([0xc2], cVector('test_inspect.c', 'long_binary_out', 'header').subarray(1));
    assert.equal(one(rsv1).rsv1, true);
    assert.deepEqual(one(rsv1).problems, [], 'RSV1 is fine with permessage-deflate');
    assert.deepEqual(d.decodeFrames(rsv1, { deflate: false }).frames[0].problems,
      ['RSV1 set: only allowed once permessage-deflate was agreed']);
  });

  it('RFC 6455 5.7: a fragmented "Hello" is two frames, one message', () => {
    const r = d.decodeFrames(concat(cVector('test_frame.c', 'test_rfc_fragmented_hello', 'want1'),
      cVector('test_frame.c', 'test_rfc_fragmented_hello', 'want2')));
    assert.equal(r.error, null);
    assert.deepEqual(r.frames.map((f) => [f.offset, f.op, f.fin, Buffer.from(f.payload, 'hex').toString(), f.problems.length]),
      [[0, 'text', false, 'Hel', 0], [5, 'continuation', true, 'lo', 0]]);
    // Alone, the continuation has no message to continue: uvws closes with 1002.
    assert.deepEqual(one(cVector('test_frame.c', 'test_rfc_fragmented_hello', 'want2')).problems, ['continuation frame without a message']);
    // Twice the first frame: a new message inside a fragmented one.
    const twice = d.decodeFrames(concat(cVector('test_frame.c', 'test_rfc_fragmented_hello', 'want1'),
      cVector('test_frame.c', 'test_rfc_fragmented_hello', 'want1')));
    assert.deepEqual(twice.frames[1].problems, ['new message inside a fragmented message']);
  });

  it('RFC 6455 5.7: ping "Hello" unmasked, its pong masked', () => {
    const r = d.decodeFrames(concat(cVector('test_frame.c', 'test_rfc_ping_pong', 'ping'), cVector('test_frame.c', 'test_rfc_ping_pong', 'pong')));
    assert.deepEqual(r.frames.map((f) => [f.op, f.dir, f.mask, Buffer.from(f.payload, 'hex').toString()]),
      [['ping', 'out', null, 'Hello'], ['pong', 'in', '37fa213d', 'Hello']]);
  });

  it('extended lengths: 256 in 16 bits, 65 536 and 2^32 + 5 in 64 bits (headers only)', () => {
    const f256 = one(cVector('test_frame.c', 'test_rfc_extended_lengths', 'want256'));
    assert.deepEqual([f256.len, f256.len_bits, f256.complete, f256.payload], [256, 16, false, '']);
    const f64k = one(cVector('test_frame.c', 'test_rfc_extended_lengths', 'want64k'));
    assert.deepEqual([f64k.len, f64k.len_bits, f64k.notes.length], [65536, 64, 1]);
    const huge = one(cVector('test_frame.c', 'test_huge_length_header_only', 'want'));
    assert.deepEqual([huge.len, huge.len_bits], [2 ** 32 + 5, 64]);
  });

  it('the 64-bit length with the top bit set is refused, as frame.c does (masked or not)', () => {
    for (const name of ['in', 'inm']) {
      const r = d.decodeFrames(cVector('test_frame.c', 'test_top_bit_length_rejected', name));
      assert.equal(r.frames.length, 0);
      assert.match(r.error, /^at byte 0: 64-bit payload length with the top bit set/);
    }
  });

  it('control-frame rules of src/proto/ws.c and a non-minimal length', () => {
    assert.deepEqual(one(Uint8Array.from([0x09, 0x00])).problems, ['fragmented control frame (FIN 0)']);
    assert.deepEqual(one(concat([0x88, 0x7e, 0x00, 0x7e], new Uint8Array(126))).problems, ['control frame payload of 126 bytes (at most 125)']);
    assert.deepEqual(one(Uint8Array.from([0x8b, 0x00])).problems, ['reserved control opcode 11']);
    assert.deepEqual(one(Uint8Array.from([0x83, 0x00])).problems, ['reserved data opcode 3']);
    assert.deepEqual(one(Uint8Array.from([0xc9, 0x00])).problems, ['RSV1 on a control frame']);
    const small = one(Uint8Array.from([0x81, 0x7e, 0x00, 0x01, 0x41]));
    assert.deepEqual([small.len, small.problems, small.notes.length, small.payload], [1, [], 1, '41']);
    assert.match(d.decodeFrames(Uint8Array.from([0x81, 0xfe, 0x00])).error, /header needs 5 more byte/);
  });

  it('parses hex as people paste it', () => {
    const want = cVector('test_frame.c', 'test_rfc_masked_hello', 'want');
    for (const text of ['81 85 37 fa 21 3d 7f 9f 4d 51 58', '0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58',
      '\\x81\\x85\\x37\\xfa\\x21\\x3d\\x7f\\x9f\\x4d\\x51\\x58', '8185 37fa\n213d 7f9f 4d51 58']) {
      assert.deepEqual(d.parseHex(text), want, text);
    }
    assert.throws(() => d.parseHex('81 8'), /odd number of hex digits/);
    assert.throws(() => d.parseHex('81 zz'), /"z" is not a hex digit/);
    assert.equal(ascii('A')[0], 0x41);
  });
});
