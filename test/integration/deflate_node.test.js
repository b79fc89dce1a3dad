'use strict';
// Integration: permessage-deflate (RFC 7692) between uvws and the `ws` npm client with
// perMessageDeflate on, over the parameter combinations ws can offer, against servers
// with --deflate-takeover on/off and two --deflate-window-bits values. A tap on the
// client's socket parses the server's frame headers, so RSV1 is checked per message.
// Run: UVWS_BIN=build/default/uvws node --test test/integration/deflate_node.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { UvwsServer, requireDev } = require('./lib/server');
const { openWs, Inbox, utf8Text, withTimeout } = require('./lib/wsutil');

const T = { timeout: 180000 };
let WebSocket;
let loadError;
try {
  WebSocket = requireDev('ws');
} catch (err) {
  loadError = err;
}

const MiB = 1 << 20;
const MIN_SIZE = 64; // uvws --deflate-min-size default

const CONFIGS = [
  [],
  ['--deflate-takeover', 'on'],
  ['--deflate-window-bits', '10'],
  ['--deflate-window-bits', '12', '--deflate-takeover', 'on'],
];

// What the server must answer (RFC 7692 and the documented uvws policy), as a parameter map.
function expectedParams(opts, args) {
  const takeover = args.includes('--deflate-takeover') && args[args.indexOf('--deflate-takeover') + 1] === 'on';
  const bits = args.includes('--deflate-window-bits') ? Number(args[args.indexOf('--deflate-window-bits') + 1]) : 15;
  const p = {};
  if (opts.serverNoContextTakeover || !takeover) p.server_no_context_takeover = true;
  if (opts.clientNoContextTakeover) p.client_no_context_takeover = true;
  const sb = opts.serverMaxWindowBits ? Math.min(bits, opts.serverMaxWindowBits) : bits;
  if (opts.serverMaxWindowBits || sb < 15) p.server_max_window_bits = String(sb);
  // ws offers client_max_window_bits (no value) unless told false; a number is sent as is
  if (opts.clientMaxWindowBits !== false) {
    p.client_max_window_bits = String(typeof opts.clientMaxWindowBits === 'number' ? opts.clientMaxWindowBits : 15);
  }
  return p;
}

function parseExtension(value) {
  assert.ok(value, 'no Sec-WebSocket-Extensions in the 101');
  assert.ok(!value.includes(','), `more than one extension accepted: ${value}`);
  const [name, ...params] = value.split(';').map((s) => s.trim());
  assert.equal(name.toLowerCase(), 'permessage-deflate');
  const out = {};
  for (const p of params) {
    const [k, v] = p.split('=').map((s) => s.trim());
    assert.ok(!(k in out), `repeated ${k} in ${value}`);
    out[k] = v === undefined ? true : v.replace(/^"|"$/g, '');
  }
  return out;
}

// Parses the server's frames as they arrive on the client socket; one entry per message.
class FrameTap {
  constructor(socket) {
    this.buf = Buffer.alloc(0);
    this.messages = []; // {opcode, rsv1, wire}
    this.cur = null;
    this.errors = [];
    socket.on('data', (chunk) => this.feed(chunk));
  }

  feed(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0];
      const b1 = this.buf[1];
      let n = b1 & 0x7f;
      let off = 2;
      if (n === 126) {
        if (this.buf.length < 4) return;
        n = this.buf.readUInt16BE(2);
        off = 4;
      } else if (n === 127) {
        if (this.buf.length < 10) return;
        n = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf.length < off + n) return;
      const fin = (b0 & 0x80) !== 0;
      const rsv1 = (b0 & 0x40) !== 0;
      const opcode = b0 & 0x0f;
      if (b0 & 0x30) this.errors.push(`RSV2/RSV3 set: 0x${b0.toString(16)}`);
      if (opcode >= 8) {
        if (rsv1) this.errors.push(`RSV1 on control frame opcode ${opcode}`);
      } else if (opcode === 0) {
        if (rsv1) this.errors.push('RSV1 on a continuation frame');
        if (this.cur) this.cur.wire += n;
      } else {
        this.cur = { opcode, rsv1, wire: n };
      }
      if (opcode < 8 && fin && this.cur) {
        this.messages.push(this.cur);
        this.cur = null;
      }
      this.buf = this.buf.subarray(off + n);
    }
  }
}

function chatText(n, seed) {
  const words = ['hi', 'ok', 'déjà', '😀', 'uvws', 'zlib', 'room', 'user'];
  let x = seed + 1;
  const parts = [];
  let size = 0;
  while (size < n) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const line = `{"user":"u${x % 50}","room":"général","text":"${words[x % 8]} ${words[(x >> 3) % 8]}"}\n`;
    parts.push(line);
    size += Buffer.byteLength(line);
  }
  const b = Buffer.from(parts.join('')).subarray(0, n);
  // cut at a character boundary, pad with ASCII
  let cut = b.length;
  while (cut > 0 && (b[cut - 1] & 0xc0) === 0x80) cut--;
  if (cut > 0 && b[cut - 1] >= 0xc0) cut--;
  return b.subarray(0, cut).toString() + 'x'.repeat(n - cut);
}

function messageMix(seed, big) {
  const m = [
    { data: chatText(10, seed), binary: false },
    { data: chatText(300, seed + 1), binary: false },
    { data: crypto.randomBytes(100), binary: true },
    { data: utf8Text(70000, seed + 2), binary: false },
    { data: Buffer.alloc(65536, 7), binary: true },
    { data: '', binary: false },
  ];
  if (big) {
    m.push({ data: chatText(MiB, seed + 3), binary: false });
    m.push({ data: crypto.randomBytes(MiB), binary: true });
    m.push({ data: Buffer.alloc(MiB), binary: true });
  }
  return m;
}

async function openPmd(url, pmd) {
  let ext;
  const ws = new WebSocket(url, { handshakeTimeout: 10000, perMessageDeflate: pmd, maxPayload: 0 });
  ws.once('upgrade', (res) => { ext = res.headers['sec-websocket-extensions']; });
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  }), 15000, `open ${url}`);
  return { ws, ext, tap: new FrameTap(ws._socket) };
}

async function echoAll(ws, tap, msgs, what) {
  const inbox = new Inbox(ws);
  for (const [i, m] of msgs.entries()) {
    await new Promise((resolve, reject) => ws.send(m.data, { binary: m.binary }, (e) => (e ? reject(e) : resolve())));
    const got = await inbox.next(60000);
    assert.equal(got.isBinary, m.binary, `${what}: message ${i}: type`);
    const want = Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data);
    assert.ok(got.data.equals(want), `${what}: message ${i} (${want.length} bytes) differs`);
  }
  // every data message the server sent: RSV1 exactly when at least --deflate-min-size bytes
  assert.deepEqual(tap.errors, [], what);
  assert.equal(tap.messages.length, msgs.length, `${what}: server messages seen on the socket`);
  for (const [i, m] of msgs.entries()) {
    const len = Buffer.byteLength(m.data);
    assert.equal(tap.messages[i].rsv1, len >= MIN_SIZE,
      `${what}: message ${i} of ${len} bytes: RSV1=${tap.messages[i].rsv1}`);
  }
  return inbox;
}

function combos() {
  const out = [];
  const cmwbs = [undefined, true, 9, 12, 15, false];
  let k = 0;
  for (const smwb of [undefined, 9, 10, 11, 12, 13, 14, 15]) {
    for (let j = 0; j < 2; j++) {
      k++;
      out.push({
        serverNoContextTakeover: k % 2 === 0,
        clientNoContextTakeover: k % 3 === 0,
        serverMaxWindowBits: smwb,
        clientMaxWindowBits: cmwbs[k % cmwbs.length],
        threshold: k % 4 === 0 ? 1024 : 0,
      });
    }
  }
  for (const sn of [false, true]) {
    for (const cn of [false, true]) {
      out.push({ serverNoContextTakeover: sn, clientNoContextTakeover: cn, threshold: 0 });
    }
  }
  return out;
}

function clean(o) {
  const r = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) r[k] = v;
  return r;
}

describe('permessage-deflate with the ws client', () => {
  const servers = [];

  before(async () => {
    if (loadError) throw loadError;
    for (const args of CONFIGS) servers.push(await UvwsServer.start({ args }));
    servers.push(await UvwsServer.start({ args: ['--deflate', 'off'] }));
  });

  after(async () => {
    const errs = [];
    for (const s of servers) {
      try {
        await s.assertAliveAndStop();
      } catch (e) {
        errs.push(e.message);
      }
    }
    if (errs.length) throw new Error(errs.join('\n'));
  });

  CONFIGS.forEach((args, si) => {
    it(`every parameter combination against uvws ${args.join(' ') || '(defaults)'}`, T, async () => {
      const all = combos();
      for (const [n, raw] of all.entries()) {
        const opts = clean(raw);
        const what = `uvws ${args.join(' ')} / ws perMessageDeflate ${JSON.stringify(opts)}`;
        const { ws, ext, tap } = await openPmd(servers[si].url('ws', '/echo'), opts);
        try {
          assert.deepEqual(parseExtension(ext), expectedParams(opts, args), `${what}: response ${ext}`);
          assert.equal(ws.extensions, 'permessage-deflate', what);
          const msgs = messageMix(n, n % 3 === 0);
          const inbox = await echoAll(ws, tap, msgs, what);
          ws.close(1000);
          const c = await inbox.close(15000);
          assert.equal(c.code, 1000, what);
        } finally {
          ws.terminate();
        }
      }
    });
  });

  it('clientMaxWindowBits 8 (ws deflates with zlib, which uses a 9-bit window then)', T, async () => {
    for (const [si, args] of CONFIGS.entries()) {
      const opts = { clientMaxWindowBits: 8, threshold: 0 };
      const what = `uvws ${args.join(' ')} / ws ${JSON.stringify(opts)}`;
      const { ws, ext, tap } = await openPmd(servers[si].url('ws', '/echo'), opts);
      try {
        assert.deepEqual(parseExtension(ext), expectedParams(opts, args), what);
        await echoAll(ws, tap, messageMix(si, true), what);
      } finally {
        ws.terminate();
      }
    }
  });

  it('malformed offers (sent as raw headers) are declined with a plain 101', T, async () => {
    const offers = [
      'permessage-deflate; foo', 'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; server_max_window_bits=7', 'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits=abc', 'permessage-deflate; server_max_window_bits=8',
      'permessage-deflate; client_max_window_bits=8; client_max_window_bits=9',
      'permessage-deflate; client_max_window_bits=abc', 'permessage-deflate; client_no_context_takeover=1',
    ];
    for (const offer of offers) {
      for (const s of servers.slice(0, 2)) {
        let ext = null;
        const ws = new WebSocket(s.url('ws', '/echo'), { perMessageDeflate: false, headers: { 'Sec-WebSocket-Extensions': offer } });
        ws.once('upgrade', (res) => { ext = res.headers['sec-websocket-extensions']; });
        await withTimeout(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), 10000, offer);
        try {
          assert.equal(ext, undefined, `offer ${offer}: got ${ext}`);
          const inbox = new Inbox(ws);
          ws.send('x'.repeat(1000));
          assert.equal((await inbox.next(10000)).data.toString(), 'x'.repeat(1000));
        } finally {
          ws.terminate();
        }
      }
    }
  });

  it('--deflate off: ws offers, no extension is agreed, messages go uncompressed', T, async () => {
    const { ws, ext, tap } = await openPmd(servers[servers.length - 1].url('ws', '/echo'), { threshold: 0 });
    try {
      assert.equal(ext, undefined);
      assert.equal(ws.extensions, '');
      const msgs = messageMix(1, true);
      const inbox = new Inbox(ws);
      for (const m of msgs) {
        ws.send(m.data, { binary: m.binary });
        const got = await inbox.next(60000);
        assert.ok(got.data.equals(Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data)));
      }
      assert.ok(tap.messages.every((m) => !m.rsv1), 'RSV1 without the extension');
    } finally {
      ws.terminate();
    }
  });

  it('many connections at once with compressed traffic interleaved', T, async () => {
    const conns = [];
    for (let i = 0; i < 30; i++) {
      const opts = clean(combos()[i % combos().length]);
      conns.push(await openPmd(servers[i % 2].url('ws', '/echo'), opts));
    }
    try {
      await Promise.all(conns.map(async ({ ws, tap }, i) => {
        const msgs = [];
        for (let r = 0; r < 20; r++) msgs.push({ data: chatText(100 + 37 * r + i, i * 100 + r), binary: r % 2 === 1 });
        await echoAll(ws, tap, msgs, `connection ${i}`);
      }));
    } finally {
      for (const { ws } of conns) ws.terminate();
    }
  });
});
