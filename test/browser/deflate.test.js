// permessage-deflate in a real browser: Chromium always offers it, so a
// page from uvws negotiates it with each server configuration below, and
// echoes a mix of text and binary messages, 1 MiB ones included
// (compressible and random), byte-exact. Runs the WebSocket API directly
// in the page (no UI) and checks from Node.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { browserAndServer } = require('./helper');

const T = { timeout: 90000 };

// In the page: open, send each message, await its echo, compare. Returns
// the negotiated extensions and a list of mismatches.
async function echoMix(page, url) {
  return page.evaluate(async (wsUrl) => {
    const text = (n, seed) => {
      let s = '';
      const words = ['alpha', 'beta', 'ωμέγα', 'chat', '{"type":"message"}', '𝄞', 'room-42'];
      for (let i = 0; s.length < n; i++) s += words[(i * 7 + seed) % words.length] + ' ';
      return s.slice(0, n);
    };
    const random = (n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
      return b;
    };
    const zeros = (n) => new Uint8Array(n).fill(7);
    const messages = [text(5, 1), text(300, 2), random(1000), text(70000, 3), zeros(70000),
      text(1 << 20, 4), random(1 << 20), zeros(1 << 20), '', new Uint8Array(0)];
    const ws = new WebSocket(wsUrl);
    ws.binaryType = 'arraybuffer';
    const queue = [];
    let waiter = null;
    ws.onmessage = (ev) => { queue.push(ev.data); if (waiter) { waiter(); waiter = null; } };
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('no open')); });
    const next = () => new Promise((resolve, reject) => {
      const take = () => resolve(queue.shift());
      if (queue.length) return take();
      const timer = setTimeout(() => reject(new Error('no echo within 15 s')), 15000);
      waiter = () => { clearTimeout(timer); take(); };
    });
    const bad = [];
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      ws.send(m);
      const got = await next();
      if (typeof m === 'string') {
        if (got !== m) bad.push(`text #${i}: ${typeof got} of ${got.length ?? got.byteLength}, sent ${m.length}`);
      } else {
        const g = got instanceof ArrayBuffer ? new Uint8Array(got) : null;
        if (!g || g.length !== m.length || g.some((v, k) => v !== m[k])) bad.push(`binary #${i} differs`);
      }
    }
    const extensions = ws.extensions;
    ws.close(1000, 'done');
    return { extensions, bad };
  }, url);
}

for (const cfg of [
  { name: 'default (shared deflater, no server context takeover)', args: [],
    expect: /^permessage-deflate; server_no_context_takeover; client_max_window_bits=15$/ },
  { name: '--deflate-takeover on', args: ['--deflate-takeover', 'on'],
    expect: /^permessage-deflate; client_max_window_bits=15$/ },
  { name: '--deflate-window-bits 10', args: ['--deflate-window-bits', '10', '--deflate-min-size', '0'],
    expect: /^permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=15$/ },
]) {
  describe(`Chromium permessage-deflate, ${cfg.name}`, () => {
    const env = browserAndServer(before, after, { uvwsArgs: cfg.args });

    it('negotiates and echoes text and binary up to 1 MiB byte-exact', T, async () => {
      const { browser, srv } = env;
      const page = await browser.context.newPage();
      try {
        await page.goto(`${srv.origin}/`);
        const r = await echoMix(page, `ws://127.0.0.1:${srv.port}/echo`);
        assert.match(r.extensions, cfg.expect);
        assert.deepEqual(r.bad, []);
        // the server saw compressed frames from Chromium (RSV1) and inflated them
        await srv.waitLog(/ws open .* extensions=permessage-deflate/);
      } finally {
        await page.close();
      }
    });
  });
}
