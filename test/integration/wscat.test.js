'use strict';
// Integration: the real uvws server driven by the `wscat` command-line client
// (node_modules/.bin/wscat at the repo root, or $UVWS_WSCAT).
// Run: UVWS_BIN=build/default/uvws node --test test/integration/wscat.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const { UvwsServer, makeWebRoot } = require('./lib/server');
const { withTimeout } = require('./lib/wsutil');
const { WSCAT, needWscat, runWscat } = require('./lib/wscat');

const T = { timeout: 30000 };

// An interactive wscat session over pipes (no pty): write lines, wait for output lines.
class WscatSession {
  constructor(args) {
    this.child = spawn(process.execPath, [WSCAT, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.out = '';
    this.err = '';
    this.waiters = [];
    this.exit = null;
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (d) => { this.out += d; this._wake(); });
    this.child.stderr.on('data', (d) => { this.err += d; this._wake(); });
    this.child.on('close', (code, signal) => { this.exit = { code, signal }; this._wake(); });
    this.child.stdin.on('error', () => {});
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(line) {
    this.child.stdin.write(line + '\n');
  }

  // Waits until stdout contains `text`.
  waitOut(text, ms = 5000) {
    return withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        if (this.out.includes(text)) resolve();
        else if (this.exit) reject(new Error(`wscat exited (${JSON.stringify(this.exit)}) before printing ${JSON.stringify(text)}\nstdout: ${this.out}\nstderr: ${this.err}`));
        else this.waiters.push(check);
      };
      check();
    }), ms, `wscat output ${JSON.stringify(text)}; stdout so far: ${JSON.stringify(this.out)} stderr: ${JSON.stringify(this.err)}`);
  }

  // Writes probe lines until one is echoed (wscat ignores input until it is connected).
  async probe(ms = 5000) {
    const deadline = Date.now() + ms;
    for (let i = 0; ; i++) {
      const line = `probe-${i}`;
      this.write(line);
      try {
        await this.waitOut(line + '\n', 250);
        return;
      } catch (err) {
        if (this.exit || Date.now() > deadline) throw err;
      }
    }
  }

  waitExit(ms = 5000) {
    return withTimeout(new Promise((resolve) => {
      const check = () => (this.exit ? resolve(this.exit) : this.waiters.push(check));
      check();
    }), ms, 'wscat exit');
  }

  kill() {
    if (!this.exit) this.child.kill('SIGKILL');
  }
}

// With --execute, wscat sends, waits -w seconds for the echoes, then closes and exits.
async function execute(srv, pathName, messages, extra = []) {
  const args = ['-c', srv.url('ws', pathName), '-w', '2', ...extra];
  for (const m of messages) args.push('-x', m);
  return runWscat(args);
}

describe('uvws with wscat', () => {
  let srv;
  let web;

  before(async () => {
    needWscat();
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

  it('wscat -x: the echo comes back', T, async () => {
    const r = await execute(srv, '/echo', ['hello']);
    assert.equal(r.code, 0, `wscat failed: ${r.stderr}`);
    assert.equal(r.stdout, 'hello\n');
  });

  it('wscat -x several messages, including UTF-8, come back in order', T, async () => {
    const msgs = ['one', 'two words', 'ünïcødé €uro 😀', 'x'.repeat(5000)];
    const r = await execute(srv, '/echo', msgs);
    assert.equal(r.code, 0, `wscat failed: ${r.stderr}`);
    assert.equal(r.stdout, msgs.map((m) => m + '\n').join(''));
  });

  it('wscat -s echo selects the echo subprotocol', T, async () => {
    const r = await execute(srv, '/echo', ['sub-echo'], ['-s', 'echo']);
    assert.equal(r.code, 0, `wscat failed: ${r.stderr}`);
    assert.equal(r.stdout, 'sub-echo\n');
    await srv.waitLog(/ws open \S+ \/echo protocol=echo\b/);
  });

  it('wscat -s foo -s uvws-echo selects uvws-echo', T, async () => {
    const r = await execute(srv, '/echo', ['sub-uvws'], ['-s', 'foo', '-s', 'uvws-echo']);
    assert.equal(r.code, 0, `wscat failed: ${r.stderr}`);
    assert.equal(r.stdout, 'sub-uvws\n');
    await srv.waitLog(/ws open \S+ \/echo protocol=uvws-echo\b/);
  });

  it('wscat -s foo: the server selects no subprotocol (wscat reports it)', T, async () => {
    const r = await execute(srv, '/echo', ['nope'], ['-s', 'foo']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Server sent no subprotocol/);
  });

  it('interactive over pipes: lines are echoed, /ping gets a pong, /close 4000 ends it', T, async () => {
    const s = new WscatSession(['-c', srv.url('ws', '/echo'), '--slash', '-P']);
    try {
      // Nothing is printed on connect when stdout is not a tty, and lines typed before the
      // connection is open are dropped: probe until an echo arrives.
      await s.probe();
      s.write('first line');
      await s.waitOut('first line\n');
      s.write('second line ✓');
      await s.waitOut('second line ✓\n');
      s.write('/ping pingdata');
      await s.waitOut('Received pong (data: "pingdata")');
      s.write('/close 4000 bye');
      const exit = await s.waitExit();
      assert.equal(exit.code, 0, `wscat: ${s.err}`);
      assert.equal(s.err, '');
      await srv.waitLog(/ws close \S+ \/echo code=4000 by=client/);
    } finally {
      s.kill();
    }
  });

  it('wscat to an unknown WebSocket path reports 404', T, async () => {
    const r = await execute(srv, '/does-not-exist', ['x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unexpected server response: 404/);
  });

  it('wscat -p 8 (protocol version 8) reports 426', T, async () => {
    const r = await execute(srv, '/echo', ['x'], ['-p', '8']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unexpected server response: 426/);
  });
});
