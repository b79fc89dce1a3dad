'use strict';
// Integration: the real uvws server driven by the `ws` npm client (node_modules at the repo root).
// Run: UVWS_BIN=build/default/uvws node --test test/integration/node_ws.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { UvwsServer, makeWebRoot, requireDev } = require('./lib/server');
const { openWs, expectUpgradeRejected, Inbox, utf8Text, randomBytes, withTimeout } = require('./lib/wsutil');

const T = { timeout: 20000 };
let WebSocket;
let loadError;
try {
  WebSocket = requireDev('ws');
} catch (err) {
  loadError = err;
}

function needWs() {
  if (loadError) throw loadError;
}

const SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20];

describe('uvws /echo with the ws client', () => {
  let srv;
  let web;

  before(async () => {
    needWs();
    web = makeWebRoot({ 'index.html': '<!doctype html><title>uvws</title>\n' });
    srv = await UvwsServer.start({ web });
  });

  after(async () => {
    try {
      if (srv) await srv.assertAliveAndStop();
    } finally {
      if (web) fs.rmSync(web, { recursive: true, force: true });
    }
  });

  for (const n of SIZES) {
    it(`echoes a ${n}-byte text message byte-exact`, T, async () => {
      const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
      const inbox = new Inbox(ws);
      const text = utf8Text(n, n + 7);
      const bytes = Buffer.from(text, 'utf8');
      assert.equal(bytes.length, n);
      ws.send(text);
      const msg = await inbox.next(10000);
      assert.equal(msg.isBinary, false, 'echo of a text message must be text');
      assert.equal(msg.data.length, n);
      assert.ok(msg.data.equals(bytes), 'text echo differs from what was sent');
      ws.close(1000);
      assert.equal((await inbox.close()).code, 1000);
    });

    it(`echoes a ${n}-byte binary message byte-exact`, T, async () => {
      const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
      const inbox = new Inbox(ws);
      const bytes = randomBytes(n);
      ws.send(bytes, { binary: true });
      const msg = await inbox.next(10000);
      assert.equal(msg.isBinary, true, 'echo of a binary message must be binary');
      assert.equal(msg.data.length, n);
      assert.ok(msg.data.equals(bytes), 'binary echo differs from what was sent');
      ws.close(1000);
      assert.equal((await inbox.close()).code, 1000);
    });
  }

  it('echoes many messages on one connection in order', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    const sent = [];
    for (let i = 0; i < 200; i++) {
      const isBinary = i % 3 === 0;
      const payload = isBinary ? randomBytes(i * 37 % 3000) : Buffer.from(utf8Text(i * 53 % 3000, i));
      sent.push({ payload, isBinary });
      ws.send(isBinary ? payload : payload.toString('utf8'), { binary: isBinary });
    }
    for (let i = 0; i < sent.length; i++) {
      const msg = await inbox.next();
      assert.equal(msg.isBinary, sent[i].isBinary, `message ${i} type`);
      assert.ok(msg.data.equals(sent[i].payload), `message ${i} bytes`);
    }
    ws.close();
    await inbox.close();
  });

  it('reassembles a fragmented text message and a fragmented binary message', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    // 'h€llo wörld' split inside a multi-byte sequence: fragments need not be valid UTF-8 alone.
    const whole = Buffer.from('h€llo wörld 😀', 'utf8');
    ws.send(whole.subarray(0, 2), { binary: false, fin: false });
    ws.send(whole.subarray(2, 9), { binary: false, fin: false });
    ws.send(whole.subarray(9), { binary: false, fin: true });
    let msg = await inbox.next();
    assert.equal(msg.isBinary, false);
    assert.ok(msg.data.equals(whole), `got ${msg.data.toString()}`);

    const bin = randomBytes(70000);
    ws.send(bin.subarray(0, 1), { binary: true, fin: false });
    ws.send(bin.subarray(1, 40000), { binary: true, fin: false });
    ws.send(bin.subarray(40000, 40000), { binary: true, fin: false }); // empty continuation
    ws.send(bin.subarray(40000), { binary: true, fin: true });
    msg = await inbox.next();
    assert.equal(msg.isBinary, true);
    assert.ok(msg.data.equals(bin));
    ws.close();
    await inbox.close();
  });

  it('negotiates the first offered subprotocol it speaks', T, async () => {
    const cases = [
      [['foo', 'uvws-echo'], 'uvws-echo'],
      [['uvws-echo', 'echo'], 'uvws-echo'],
      [['echo', 'uvws-echo'], 'echo'],
      [['bar', 'echo', 'baz'], 'echo'],
    ];
    for (const [offer, expected] of cases) {
      const ws = await openWs(WebSocket, srv.url('ws', '/echo'), offer);
      const inbox = new Inbox(ws);
      assert.equal(ws.protocol, expected, `offer ${offer.join(', ')}`);
      ws.send('proto');
      assert.equal((await inbox.next()).data.toString(), 'proto');
      ws.close();
      await inbox.close();
    }
    await srv.waitLog(/ws open \S+ \/echo protocol=uvws-echo/);
    await srv.waitLog(/ws open \S+ \/echo protocol=echo/);
  });

  it('answers without Sec-WebSocket-Protocol when no offered subprotocol matches', T, async () => {
    // ws rejects a 101 that lacks the subprotocol it asked for; that proves the header is absent.
    await assert.rejects(openWs(WebSocket, srv.url('ws', '/echo'), ['foo', 'bar']),
      /Server sent no subprotocol/);
    // No offer at all: fine, protocol is ''.
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    assert.equal(ws.protocol, '');
    ws.close();
    await new Inbox(ws).close();
  });

  it('negotiates permessage-deflate when ws offers it, and echoes byte-exact', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'), undefined, { perMessageDeflate: true });
    assert.match(ws.extensions, /^permessage-deflate/, `server accepted: ${ws.extensions}`);
    const inbox = new Inbox(ws);
    const big = Buffer.alloc(5000, 'a');
    ws.send(big.toString());
    assert.ok((await inbox.next()).data.equals(big));
    ws.close();
    await inbox.close();
  });

  it('propagates close code 4000 and reason "bye"', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    ws.close(4000, 'bye');
    const c = await inbox.close();
    assert.equal(c.code, 4000);
    assert.equal(c.reason, 'bye');
    await srv.waitLog(/ws close \S+ \/echo code=4000 by=client/);
  });

  it('replies to a close without status with 1000', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    ws.close(); // ws sends an empty close payload
    const c = await inbox.close();
    assert.equal(c.code, 1000);
  });

  it('answers a ping with a pong carrying the same payload', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    for (const payload of [Buffer.alloc(0), Buffer.from('hello-ping'), randomBytes(125)]) {
      ws.ping(payload);
      const pong = await inbox.pong();
      assert.ok(pong.equals(payload), `pong ${pong.toString('hex')} != ping ${payload.toString('hex')}`);
    }
    ws.close();
    await inbox.close();
  });

  it('answers a ping sent between fragments before echoing the message', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    ws.send('first-', { fin: false });
    ws.ping('mid');
    const pong = await inbox.pong();
    assert.equal(pong.toString(), 'mid');
    ws.send('second', { fin: true });
    const msg = await inbox.next();
    assert.equal(msg.data.toString(), 'first-second');
    assert.deepEqual(inbox.events.slice(0, 2), ['pong', 'message']);
    ws.close();
    await inbox.close();
  });

  it('ignores unsolicited pongs', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    ws.pong('unsolicited');
    ws.send('after-pong');
    assert.equal((await inbox.next()).data.toString(), 'after-pong');
    assert.equal(inbox.pongs.length, 0);
    ws.close();
    await inbox.close();
  });

  it('closes with 1007 on a text message that is not UTF-8', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    // ws sends a Buffer as a text frame without checking it.
    ws.send(Buffer.from([0x68, 0x69, 0xc0, 0xaf]), { binary: false });
    const c = await inbox.close();
    assert.equal(c.code, 1007);
    await srv.waitLog(/ws fail \S+ \/echo code=1007/);
  });

  it('serves 20 concurrent connections echoing in parallel', T, async () => {
    const N = 20;
    const ROUNDS = 25;
    const clients = await Promise.all(Array.from({ length: N }, () => openWs(WebSocket, srv.url('ws', '/echo'))));
    const inboxes = clients.map((ws) => new Inbox(ws));
    await Promise.all(clients.map(async (ws, i) => {
      const sent = [];
      for (let r = 0; r < ROUNDS; r++) {
        const payload = r % 2 ? randomBytes(1 + ((i * 131 + r * 17) % 20000)) : Buffer.from(`client ${i} round ${r} ${utf8Text(r * 11, i)}`);
        sent.push(payload);
        ws.send(r % 2 ? payload : payload.toString('utf8'), { binary: r % 2 === 1 });
      }
      for (let r = 0; r < ROUNDS; r++) {
        const msg = await inboxes[i].next(10000);
        assert.ok(msg.data.equals(sent[r]), `client ${i} message ${r} differs`);
        assert.equal(msg.isBinary, r % 2 === 1);
      }
    }));
    clients.forEach((ws, i) => ws.close(3000 + i));
    const closes = await Promise.all(inboxes.map((ib) => ib.close()));
    closes.forEach((c, i) => assert.equal(c.code, 3000 + i));
  });

  it('rejects an upgrade to an unknown path with 404', T, async () => {
    const r = await expectUpgradeRejected(WebSocket, srv.url('ws', '/no-such-ws-route'));
    assert.equal(r.status, 404);
  });

  it('rejects Sec-WebSocket-Version 8 with 426 and Sec-WebSocket-Version: 13', T, async () => {
    const r = await expectUpgradeRejected(WebSocket, srv.url('ws', '/echo'), undefined, { protocolVersion: 8 });
    assert.equal(r.status, 426);
    assert.equal(r.headers['sec-websocket-version'], '13');
  });
});

describe('uvws --max-message with the ws client', () => {
  let srv;

  before(async () => {
    needWs();
    srv = await UvwsServer.start({ web: makeWebRoot({}), args: ['--max-message', '1024'] });
  });

  after(async () => {
    if (srv) {
      await srv.assertAliveAndStop();
      fs.rmSync(srv.web, { recursive: true, force: true });
    }
  });

  it('echoes a message of exactly --max-message bytes', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    const b = randomBytes(1024);
    ws.send(b);
    assert.ok((await inbox.next()).data.equals(b));
    ws.close();
    await inbox.close();
  });

  it('closes with 1009 on a message one byte over --max-message', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    ws.send(randomBytes(1025));
    const c = await inbox.close();
    assert.equal(c.code, 1009);
    assert.equal(inbox.items.length, 0, 'no echo may arrive for an oversized message');
  });

  it('closes with 1009 when fragments add up to more than --max-message', T, async () => {
    const ws = await openWs(WebSocket, srv.url('ws', '/echo'));
    const inbox = new Inbox(ws);
    ws.send(randomBytes(600), { fin: false });
    ws.send(randomBytes(600), { fin: true });
    const c = await inbox.close();
    assert.equal(c.code, 1009);
  });
});

describe('uvws graceful shutdown with ws clients', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    it(`sends close 1001 to every open WebSocket on ${signal} and exits 0`, T, async () => {
      needWs();
      const web = makeWebRoot({});
      const srv = await UvwsServer.start({ web });
      try {
        const clients = await Promise.all([0, 1, 2].map(() => openWs(WebSocket, srv.url('ws', '/echo'))));
        const inboxes = clients.map((ws) => new Inbox(ws));
        clients[0].send('before-shutdown');
        assert.equal((await inboxes[0].next()).data.toString(), 'before-shutdown');
        const stopped = srv.stop(signal); // expects exit status 0 within 10 s
        const closes = await withTimeout(Promise.all(inboxes.map((ib) => ib.close(10000))), 11000, 'closes');
        for (const c of closes) assert.equal(c.code, 1001);
        assert.equal(await stopped, 0);
      } finally {
        if (srv.alive()) srv.proc.kill('SIGKILL');
        fs.rmSync(web, { recursive: true, force: true });
      }
    });
  }
});
