'use strict';
// The browser client over TLS: uvws with --tls-self-signed serves the page over https:// and
// Debian's headless Chromium (playwright-core, never a downloaded browser) loads it, with
// --ignore-certificate-errors in a fresh throw-away profile (the certificate is nobody's), and
// echoes over wss://. The page's URL field must default to wss://HOST/echo when loaded over https.
//
// Run: UVWS_BIN=build/default/uvws node --test test/browser/tls.test.js
// Missing Chromium or playwright-core fails the test with a message saying what to install.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { browserAndServer, artifactsDir } = require('./helper');

const WAIT = 15000;

describe('uvws browser client over https:// and wss://', () => {
  let srv;
  let browser;
  let tlsPort;
  let shots;

  // The certificate is nobody's: this throw-away profile alone ignores certificate errors.
  const env = browserAndServer(before, after, {
    uvwsArgs: ['--tls-self-signed', '--tls-port', '0'],
    launch: { extraArgs: ['--ignore-certificate-errors'], viewport: { width: 1280, height: 900 } },
  });
  before(async () => {
    shots = artifactsDir();
    ({ browser, srv } = env);
    tlsPort = Number((await srv.waitLog(/listening on https:\/\/\S+:(\d+)/))[1]);
  });

  it('loads the page over https and echoes over wss', { timeout: 90000 }, async () => {
    if (!browser) throw new Error('Chromium did not start (see the before hook error)');
    const page = await browser.context.newPage();
    page.setDefaultTimeout(WAIT);
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    let failed = true;
    try {
      const origin = `https://localhost:${tlsPort}`;
      const resp = await page.goto(`${origin}/`);
      assert.equal(resp.status(), 200);
      await page.waitForSelector('html[data-ready="true"]');
      assert.match(await page.title(), /uvws/);
      assert.equal(await page.evaluate(() => location.protocol), 'https:');
      // the page's own files came over https from the TLS listener
      await srv.waitLog(/"GET \/js\/main\.js HTTP\/1\.1" 200/);
      for (const url of requests) assert.ok(url.startsWith(`${origin}/`), `request left the https origin: ${url}`);
      const sec = await resp.securityDetails();
      assert.ok(sec, 'no TLS details for the page');
      assert.equal(sec.protocol, 'TLS 1.2', JSON.stringify(sec));
      assert.equal(sec.subjectName, 'localhost', JSON.stringify(sec));

      // The URL field defaults to wss:// on an https page.
      assert.equal(await page.inputValue('#url'), `wss://localhost:${tlsPort}/echo`);
      await page.click('#connect-btn');
      await page.waitForSelector('#ready-state[data-state="open"]');
      assert.equal(await page.textContent('#ws-url'), `wss://localhost:${tlsPort}/echo`);
      await srv.waitLog(/ws open 127\.0\.0\.1:\d+ \/echo/);

      await page.fill('#message-text', 'héllo over wss');
      await page.click('#send-text');
      const rows = page.locator('#message-list tr.received');
      await rows.nth(0).waitFor();
      assert.equal(await rows.nth(0).getAttribute('data-type'), 'text');
      assert.match(await rows.nth(0).innerText(), /"héllo over wss"/);

      await page.check('#binary-type-arraybuffer');
      await page.fill('#random-size', '70000');
      await page.click('#send-random');
      await rows.nth(1).waitFor();
      assert.equal(await rows.nth(1).getAttribute('data-cls'), 'ArrayBuffer');
      assert.equal(await rows.nth(1).getAttribute('data-size'), '70000');
      await page.waitForFunction(() => document.querySelectorAll('#message-list tr.received')[1].dataset.match === 'true');

      // The same echo from page script, to check the bytes round-trip exactly over wss.
      const ok = await page.evaluate(async (url) => {
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('ws error')); });
        const data = new Uint8Array(1 << 20);
        for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
        const back = await new Promise((resolve) => { ws.onmessage = (e) => resolve(new Uint8Array(e.data)); ws.send(data); });
        ws.close(1000);
        return back.length === data.length && back.every((b, i) => b === data[i]);
      }, `wss://localhost:${tlsPort}/echo`);
      assert.equal(ok, true, '1 MiB binary echo over wss from page script');

      assert.deepEqual(problems, [], 'the page logged errors');
      failed = false;
    } finally {
      try {
        await page.screenshot({ path: path.join(shots, `tls-echo${failed ? '-FAILED' : ''}.png`), fullPage: true });
      } catch { /* the page may be gone */ }
      await page.close().catch(() => {});
    }
  });
});
