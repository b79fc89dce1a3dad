'use strict';
// Integration: uvws over TLS with Node clients: `wscat -c wss://... --ca` against a certificate
// from a CA the test makes with the openssl CLI (tls_util.py pki), `wscat -n` against
// --tls-self-signed, and the `ws` package (ca option) echoing over wss:// up to 1 MiB, with and
// without permessage-deflate, through a chain (leaf + intermediate) file too.
// Run: UVWS_BIN=build/default/uvws node --test test/integration/tls_node.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { UvwsServer, requireDev } = require('./lib/server');
const { withTimeout, openWs, Inbox } = require('./lib/wsutil');
const { needWscat, runWscat } = require('./lib/wscat');

const T = { timeout: 60000 };
const PYTHON = process.env.UVWS_PYTHON || '/usr/bin/python3';
const MiB = 1024 * 1024;

function loadWs() {
  return requireDev('ws');
}

// The test PKI (openssl CLI through tls_util.py; a missing openssl throws).
function makePki() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uvws-it-tls-node-'));
  try {
    execFileSync(PYTHON, [path.join(__dirname, 'tls_util.py'), 'pki', dir], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
  } catch (err) {
    throw new Error(`cannot make the test certificates with openssl (tls_util.py pki): ${err.message}\n${err.stderr || ''}`);
  }
  return dir;
}

// Starts uvws with `args` plus an ephemeral TLS port; resolves with {srv, tlsPort, fingerprint}.
// On localhost, the default listen address (127.0.0.1 and ::1): the certificates name
// localhost, and Node 18 connects to the first address /etc/hosts gives it, often ::1.
async function startTls(args) {
  const srv = await UvwsServer.start({ host: 'localhost', args: [...args, '--tls-port', '0'] });
  const m = await srv.waitLog(/listening on https:\/\/\S+:(\d+)/);
  const fp = await srv.waitLog(/TLS certificate.* SHA-256 fingerprint ([0-9A-F:]{95})/);
  return { srv, tlsPort: Number(m[1]), fingerprint: fp[1] };
}

// Sends each message in turn and checks its echo (type and bytes).
async function echoAll(ws, messages, ms = 30000) {
  const inbox = ws._uvwsInbox || (ws._uvwsInbox = new Inbox(ws));
  for (const msg of messages) {
    ws.send(msg);
    const got = await inbox.next(ms);
    const isBinary = Buffer.isBuffer(msg);
    assert.equal(got.isBinary, isBinary, `echo of ${msg.length}: type`);
    assert.ok(got.data.equals(isBinary ? msg : Buffer.from(msg)), `echo of ${msg.length} bytes differs`);
  }
}

function closeWs(ws, ms = 5000) {
  if (ws.readyState === ws.CLOSED) return Promise.resolve(ws._closeCode);
  return withTimeout(new Promise((resolve) => {
    ws.once('close', (code) => resolve(code));
    ws.close(1000, 'done');
  }), ms, 'close');
}

function fingerprintOf(ws) {
  const cert = ws._socket.getPeerCertificate();
  return cert.fingerprint256;
}

describe('uvws over TLS with Node clients', () => {
  let pki;
  let ca;
  const servers = {};

  before(async () => {
    loadWs();
    pki = makePki();
    ca = fs.readFileSync(path.join(pki, 'ca.pem'));
    servers.ec = await startTls(['--tls-cert', path.join(pki, 'ec.pem'), '--tls-key', path.join(pki, 'ec.key')]);
    servers.rsaChain = await startTls(['--tls-cert', path.join(pki, 'rsa-chain.pem'), '--tls-key', path.join(pki, 'rsa-int.key')]);
    // (not --tls-only: lib/server.js waits for the plain listener's log line)
    servers.self = await startTls(['--tls-self-signed']);
  }, { timeout: 90000 });

  after(async () => {
    const errors = [];
    for (const [name, s] of Object.entries(servers)) {
      try {
        if (!s.srv.alive()) throw new Error(`uvws (${name}) died (code ${s.srv.exitCode}):\n${s.srv.logText()}`);
        await s.srv.stop(); // SIGTERM: exit 0 within 10 s (LeakSanitizer under ASan)
      } catch (err) {
        errors.push(err);
      }
    }
    if (pki) fs.rmSync(pki, { recursive: true, force: true });
    if (errors.length) throw errors[0];
  }, { timeout: 60000 });

  it('wscat --ca: echo over wss:// verified against the test CA (leaf and chain)', T, async () => {
    needWscat();
    for (const [name, s] of [['ec', servers.ec], ['rsa-chain', servers.rsaChain]]) {
      for (const host of ['localhost', '127.0.0.1']) {
        const r = await runWscat(['-c', `wss://${host}:${s.tlsPort}/echo`, '--ca', path.join(pki, 'ca.pem'),
          '-w', '2', '-x', `hello ${name} ${host}`, '-x', 'second line']);
        assert.equal(r.code, 0, `${name} ${host}: ${JSON.stringify(r)}`);
        // without a terminal wscat prints each received message on its own line
        assert.deepEqual(r.stdout.split('\n'), [`hello ${name} ${host}`, 'second line', ''], JSON.stringify(r));
      }
    }
  });

  it('wscat without --ca refuses the test certificate', T, async () => {
    needWscat();
    const r = await runWscat(['-c', `wss://localhost:${servers.ec.tlsPort}/echo`, '-w', '1', '-x', 'nope']);
    assert.notEqual(r.code, 0, JSON.stringify(r));
    assert.doesNotMatch(r.stdout, /nope/);
    assert.match(r.stdout + r.stderr, /certificate|issuer/i, JSON.stringify(r));
  });

  it('wscat -n against --tls-self-signed', T, async () => {
    needWscat();
    const r = await runWscat(['-n', '-c', `wss://localhost:${servers.self.tlsPort}/echo`, '-w', '2',
      '-x', 'self-signed hello']);
    assert.equal(r.code, 0, JSON.stringify(r));
    assert.deepEqual(r.stdout.split('\n'), ['self-signed hello', ''], JSON.stringify(r));
    // and without -n it is refused: the certificate is nobody's
    const refused = await runWscat(['-c', `wss://localhost:${servers.self.tlsPort}/echo`, '-w', '1', '-x', 'x']);
    assert.notEqual(refused.code, 0, JSON.stringify(refused));
  });

  for (const deflate of [false, true]) {
    it(`ws client (ca option) echoes text and binary up to 1 MiB over wss://${deflate ? ' with permessage-deflate' : ''}`, T, async () => {
      const WebSocket = loadWs();
      for (const [name, s] of [['ec', servers.ec], ['rsa-chain', servers.rsaChain]]) {
        const ws = await openWs(WebSocket, `wss://localhost:${s.tlsPort}/echo`, undefined,
          { ca, perMessageDeflate: deflate, maxPayload: 64 * MiB });
        try {
          assert.equal(fingerprintOf(ws), s.fingerprint, `${name}: the certificate the server logged`);
          assert.equal(ws._socket.getProtocol(), 'TLSv1.2');
          assert.equal(ws._socket.alpnProtocol || false, false); // ws offers no ALPN
          assert.equal(ws.extensions.includes('permessage-deflate'), deflate, `${name}: extensions ${ws.extensions}`);
          const text = 'é€😀 '.repeat(MiB / 16).slice(0, MiB / 2);
          await echoAll(ws, [
            'hello over wss',
            crypto.randomBytes(125), crypto.randomBytes(126), crypto.randomBytes(65536),
            crypto.randomBytes(MiB), // 1 MiB, incompressible
            Buffer.alloc(MiB, 0x61), // 1 MiB, compresses to almost nothing
            text,
          ]);
          assert.equal(await closeWs(ws), 1000);
        } finally {
          ws.terminate();
        }
      }
    });
  }

  it('ws client: many concurrent wss:// sessions on the self-signed server', T, async () => {
    const WebSocket = loadWs();
    const clients = await Promise.all(Array.from({ length: 20 }, () =>
      openWs(WebSocket, `wss://127.0.0.1:${servers.self.tlsPort}/echo`, undefined, { rejectUnauthorized: false })));
    try {
      for (const ws of clients) assert.equal(fingerprintOf(ws), servers.self.fingerprint);
      await Promise.all(clients.map((ws, i) => echoAll(ws, [`client ${i}`, crypto.randomBytes(20000 + i)])));
    } finally {
      await Promise.all(clients.map((ws) => closeWs(ws).catch(() => ws.terminate())));
    }
  });

  it('ws client refuses the certificate without the CA', T, async () => {
    const WebSocket = loadWs();
    await assert.rejects(openWs(WebSocket, `wss://localhost:${servers.ec.tlsPort}/echo`), /certificate|issuer/i);
  });
});
