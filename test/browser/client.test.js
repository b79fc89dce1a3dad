'use strict';
// End-to-end tests of the browser client in web/: the real uvws binary serves the page and its
// WebSocket routes on a loopback port, and Debian's headless Chromium (driven by playwright-core
// from the repo's node_modules, never a downloaded browser) uses the page like a learner would.
//
// Run: UVWS_BIN=build/default/uvws node --test test/browser/client.test.js
// Screenshots go to $UVWS_ARTIFACTS (ctest: <build>/test/browser/screenshots), else to the
// directory given as an argument, else to $TMPDIR/uvws-browser-screenshots.
// Missing Chromium or playwright-core fails every test with a message saying what to install.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const path = require('node:path');
const { browserAndServer, artifactsDir } = require('./helper');

const T = { timeout: 60000 }; // per test
const WAIT = 15000; // per page action or expectation
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

let srv;
let browser;
let shots;

describe('uvws browser client in Chromium', () => {
  const env = browserAndServer(before, after);
  before(() => {
    shots = artifactsDir();
    ({ browser, srv } = env);
  });

  // Runs `fn(page, ctx)` in a fresh page of the shared browser and always saves a screenshot
  // named after the scenario (with "-FAILED" when it failed). Page errors fail the test.
  function scenario(name, fn, { allowConsoleErrors = false, timeout = T.timeout } = {}) {
    it(name.replace(/-/g, ' '), { timeout }, async () => {
      if (!browser) throw new Error('Chromium did not start (see the before hook error)');
      const page = await browser.context.newPage();
      page.setDefaultTimeout(WAIT);
      const problems = [];
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error' && !allowConsoleErrors) problems.push(`console error: ${m.text()}`);
      });
      let failed = true;
      try {
        await fn(page);
        assert.deepEqual(problems, [], 'the page logged errors');
        failed = false;
      } finally {
        try {
          await page.screenshot({ path: path.join(shots, `${name}${failed ? '-FAILED' : ''}.png`), fullPage: true });
        } catch { /* the page may be gone */ }
        await page.close().catch(() => {});
      }
    });
  }

  async function openPage(page, query = '') {
    await page.goto(`${srv.origin}/${query}`);
    await page.waitForSelector('html[data-ready="true"]');
  }

  async function connect(page, { inspect = false, protocols = '' } = {}) {
    if (inspect) await page.check('#inspect');
    if (protocols) await page.fill('#protocols', protocols);
    await page.click('#connect-btn');
    await page.waitForSelector('#ready-state[data-state="open"]');
  }

  const rows = (page, sel) => page.locator(sel);
  const messageRows = (page) => rows(page, '#message-list tr.received');
  const frameRows = (page, filter = '') => rows(page, `#frame-list tr${filter}`);

  async function waitCount(locator, n) {
    await locator.nth(n - 1).waitFor();
  }

  // "81 85 a5 a8" -> Uint8Array
  function hexBytes(text) {
    return Uint8Array.from(text.trim().split(/\s+/).filter(Boolean), (b) => parseInt(b, 16));
  }

  async function eventTexts(page, type) {
    return page.locator(`#event-log li[data-type="${type}"]`).allInnerTexts();
  }

  // ------------------------------------------------------------------------------------------

  scenario('01-page-loads', async (page) => {
    await openPage(page);
    assert.match(await page.title(), /uvws/);
    assert.equal(await page.inputValue('#url'), `ws://127.0.0.1:${srv.port}/echo`);
    assert.equal(await page.textContent('#ready-state'), 'no socket');
    assert.equal(await page.isDisabled('#send-text'), true);
    assert.equal(await page.isEnabled('#connect-btn'), true);

    // The files came from uvws, with the types a module script needs.
    await srv.waitLog(/"GET \/js\/main\.js HTTP\/1\.1" 200/);
    await srv.waitLog(/"GET \/css\/style\.css HTTP\/1\.1" 200/);
    const js = await page.evaluate(async () => (await fetch('js/main.js')).headers.get('content-type'));
    assert.match(js, /javascript/);

    // Help texts keep stable ids and link to the RFC sections that govern them.
    const help = await page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('[id^="help-"]')].map((el) => [el.id, [...el.querySelectorAll('a')].map((a) => a.href)])));
    const expect = {
      'help-connect': ['#section-1.3', '#section-4.2', 'developer.mozilla.org/en-US/docs/Web/API/WebSocket'],
      'help-send': ['#section-5.6', '#section-5.4'],
      'help-messages': ['developer.mozilla.org/en-US/docs/Web/API/MessageEvent'],
      'help-close': ['#section-7', '#section-7.4', 'developer.mozilla.org/en-US/docs/Web/API/CloseEvent'],
      'help-frames': ['#section-5.2'],
      'help-masking': ['#section-5.3'],
      'help-fragmentation': ['#section-5.4'],
      'help-control': ['#section-5.5'],
      'help-handshake': ['#section-1.3', '#section-4.2'],
    };
    for (const [id, needles] of Object.entries(expect)) {
      assert.ok(help[id], `help text #${id} exists`);
      for (const needle of needles) {
        assert.ok(help[id].some((href) => href.includes(needle)), `#${id} links to ${needle}: ${help[id].join(' ')}`);
      }
    }

    // Every form control has a label; every clickable thing is a real button.
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, textarea, select')]
      .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label')).map((el) => el.id || el.outerHTML));
    assert.deepEqual(unlabelled, []);

    // Keyboard: Tab reaches the URL field then the next controls, and focus is visible.
    await page.focus('#url');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'protocols');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'inspect');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'focused control has a visible outline');

    // Dark mode and a phone-sized viewport: readable, nothing wider than the screen.
    await page.emulateMedia({ colorScheme: 'dark' });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, 'rgb(244, 246, 249)', 'dark mode changes the palette');
    await page.screenshot({ path: path.join(shots, '01-page-loads-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 375, height: 812 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than a 375px screen`);
    await page.screenshot({ path: path.join(shots, '01-page-loads-mobile.png'), fullPage: true });
  });

  scenario('02-echo-text-and-binary', async (page) => {
    await openPage(page);
    await connect(page, { protocols: 'echo, uvws-echo' });
    assert.equal(await page.textContent('#ready-state'), 'OPEN (1)');
    assert.equal(await page.textContent('#ws-protocol'), '"echo"');
    // uvws accepts Chromium's permessage-deflate offer unless started with --deflate off.
    assert.match(await page.textContent('#ws-extensions'), /^"(permessage-deflate(;[^"]*)?)?"$/);
    assert.equal(await page.textContent('#ws-url'), `ws://127.0.0.1:${srv.port}/echo`);
    await srv.waitLog(/ws open 127\.0\.0\.1:\d+ \/echo protocol=echo/);
    const opens = await eventTexts(page, 'open');
    assert.equal(opens.length, 1);
    assert.match(opens[0], /protocol "echo"/);

    // Text (with non-ASCII: 2 UTF-8 bytes for ü and ß).
    await page.fill('#message-text', 'héllo wörld');
    await page.click('#send-text');
    await waitCount(messageRows(page), 1);
    let row = messageRows(page).nth(0);
    assert.equal(await row.getAttribute('data-type'), 'text');
    assert.equal(await row.getAttribute('data-cls'), 'string');
    assert.equal(await row.getAttribute('data-size'), '13');
    assert.match(await row.innerText(), /"héllo wörld"/);
    assert.match(await row.innerText(), /send #1 ✓/);
    assert.match(await row.locator('.rtt').innerText(), /\d(\.\d+)? m?s/);

    // The same text as binary (binaryType "blob", the default): a Blob of the UTF-8 bytes.
    await page.click('#send-text-binary');
    await waitCount(messageRows(page), 2);
    row = messageRows(page).nth(1);
    assert.equal(await row.getAttribute('data-type'), 'binary');
    assert.equal(await row.getAttribute('data-cls'), 'Blob');
    assert.equal(await row.getAttribute('data-size'), '13');
    await page.waitForFunction(() => document.querySelectorAll('#message-list tr.received')[1].dataset.match === 'true');
    assert.match(await row.locator('.preview-text').innerText(), /^68 c3 a9 6c 6c 6f 20 77 c3 b6 72 6c 64$/);

    // Random bytes with binaryType "arraybuffer".
    await page.check('#binary-type-arraybuffer');
    assert.equal(await page.textContent('#ws-binary-type'), '"arraybuffer"');
    await page.fill('#random-size', '1000');
    await page.click('#send-random');
    await waitCount(messageRows(page), 3);
    row = messageRows(page).nth(2);
    assert.equal(await row.getAttribute('data-cls'), 'ArrayBuffer');
    assert.equal(await row.getAttribute('data-size'), '1000');
    assert.equal(await row.getAttribute('data-match'), 'true');
    assert.match(await row.locator('.preview-text').innerText(), /^([0-9a-f]{2} ){15}[0-9a-f]{2} …$/);

    // A file picked with <input type=file>.
    const content = Buffer.from('uvws file upload test\n'.repeat(100));
    await page.setInputFiles('#file', { name: 'hello.txt', mimeType: 'text/plain', buffer: content });
    await page.click('#send-file');
    await waitCount(messageRows(page), 4);
    row = messageRows(page).nth(3);
    assert.equal(await row.getAttribute('data-size'), String(content.length));
    assert.equal(await row.getAttribute('data-match'), 'true');
    assert.match(await row.locator('.preview-text').innerText(), /^75 76 77 73 20 66 69 6c/);

    // Four calls to send, four message events, all in order.
    const log = await page.locator('#event-log li').allInnerTexts();
    const types = await page.locator('#event-log li').evaluateAll((lis) => lis.map((li) => li.dataset.type));
    assert.deepEqual(types.filter((t) => t !== 'call'), ['open', 'message', 'message', 'property', 'message', 'message']);
    assert.equal(log.filter((l) => /ws\.send\(/.test(l)).length, 4);
    assert.equal(await page.textContent('#message-count'), '4');
  });

  scenario('03-close-4000-bye', async (page) => {
    await openPage(page);
    await connect(page);

    // The browser refuses codes a page may not send, and the page shows its error.
    await page.fill('#close-code', '1001');
    await page.click('#close-btn');
    await page.waitForSelector('#close-error:not([hidden])');
    assert.match(await page.textContent('#close-error'), /InvalidAccessError/);
    assert.equal(await page.textContent('#ready-state'), 'OPEN (1)');

    await page.fill('#close-code', '4000');
    await page.fill('#close-reason', 'bye');
    await page.click('#close-btn');
    await page.waitForSelector('#event-log li[data-type="close"]');
    const [close] = await eventTexts(page, 'close');
    assert.match(close, /code 4000/);
    assert.match(close, /reason "bye"/);
    assert.match(close, /wasClean true/);
    assert.equal(await page.textContent('#ready-state'), 'CLOSED (3)');
    assert.equal(await page.isHidden('#close-error'), true);
    assert.equal(await page.isEnabled('#connect-btn'), true);
    await srv.waitLog(/ws close 127\.0\.0\.1:\d+ \/echo code=4000 by=client/);
  });

  scenario('04-inspector-handshake-and-masking', async (page) => {
    await openPage(page);
    await page.check('#inspect');
    assert.equal(await page.inputValue('#url'), `ws://127.0.0.1:${srv.port}/inspect`);
    await connect(page);
    await page.waitForSelector('#handshake-view:not([hidden])');

    // The handshake as the server saw it, and the accept computation spelled out.
    const request = await page.textContent('#handshake-request');
    const response = await page.textContent('#handshake-response');
    assert.match(request, /^GET \/inspect HTTP\/1\.1\n/);
    assert.match(request, /^Upgrade: websocket$/mi);
    assert.match(request, /^Sec-WebSocket-Version: 13$/m);
    const key = /^Sec-WebSocket-Key: (\S+)$/m.exec(request)[1];
    assert.match(response, /^HTTP\/1\.1 101 /);
    const acceptHeader = /^Sec-WebSocket-Accept: (\S+)$/mi.exec(response)[1];
    const sha1 = crypto.createHash('sha1').update(key + GUID).digest();
    assert.equal(await page.textContent('[data-testid="accept-key"]'), key);
    assert.equal(await page.textContent('[data-testid="accept-guid"]'), GUID);
    assert.equal(await page.textContent('[data-testid="accept-concatenated"]'), key + GUID);
    assert.equal(await page.textContent('[data-testid="accept-sha1"]'), sha1.toString('hex'));
    assert.equal(await page.textContent('[data-testid="accept-value"]'), sha1.toString('base64'));
    assert.equal(acceptHeader, sha1.toString('base64'));
    await page.waitForSelector('#accept-check.ok');

    // A text message: the browser's frame is masked, the server's is not; the echo is listed
    // as a message, the trace messages are not. With permessage-deflate, Chromium compresses
    // (RSV1) and the traced bytes must inflate to the text.
    await page.fill('#message-text', 'hello');
    await page.click('#send-text');
    await waitCount(messageRows(page), 1);
    const inRow = frameRows(page, '[data-dir="in"][data-op="text"]').first();
    const outRow = frameRows(page, '[data-dir="out"][data-op="text"]').first();
    assert.equal(await inRow.getAttribute('data-masked'), 'true');
    assert.equal(await inRow.getAttribute('data-len-bits'), '7');
    const inText = await inRow.innerText();
    assert.match(inText, /in ↑/);
    assert.match(inText, /yes/);
    const compressed = (await inRow.getAttribute('data-rsv1')) === 'true';
    const header = hexBytes(await inRow.locator('td.header-hex').innerText());
    const payload = hexBytes(await inRow.locator('td.payload-hex .plain').innerText());
    const wire = hexBytes((await inRow.locator('td.payload-hex .wire').innerText()).replace('masked', ''));
    const len = Number(await inRow.getAttribute('data-len'));
    assert.equal(header.length, 6, '2 bytes + 4-byte masking key');
    assert.equal(header[0], compressed ? 0xc1 : 0x81, 'FIN, RSV1 if compressed, opcode 1');
    assert.equal(header[1], 0x80 | len, 'MASK bit and the 7-bit length');
    assert.equal(payload.length, len, 'the whole payload is traced');
    const maskKey = header.subarray(2, 6);
    assert.deepEqual(wire, payload.map((b, i) => b ^ maskKey[i & 3]), 'the wire bytes are the payload XOR the key');
    const plain = compressed
      ? zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlib.constants.Z_SYNC_FLUSH })
      : Buffer.from(payload);
    assert.equal(plain.toString(), 'hello');
    if (compressed) {
      await inRow.locator('.meaning[data-inflated="true"]').waitFor();
      assert.match(await inRow.locator('.meaning').innerText(), /inflates to 5 bytes: "hello"/);
      assert.match(await inRow.innerText(), /deflate/);
    } else {
      assert.match(await inRow.locator('.meaning').innerText(), /"hello"/);
    }
    assert.equal(await outRow.getAttribute('data-masked'), 'false');
    const outHeader = hexBytes(await outRow.locator('td.header-hex').innerText());
    assert.equal(outHeader.length, 2);
    assert.equal(outHeader[1], Number(await outRow.getAttribute('data-len')), 'no MASK bit from the server');
    assert.equal(await messageRows(page).count(), 1);
    const echo = messageRows(page).nth(0);
    assert.equal(await echo.getAttribute('data-type'), 'text');
    assert.match(await echo.innerText(), /"hello"/);
    assert.match(await echo.innerText(), /send #1 ✓/);
    const traces = await page.locator('#event-log li[data-trace="true"]').count();
    assert.ok(traces >= 3, `trace messages are logged as message events (${traces})`);

    // The anatomy view of the browser's frame: MASK bit 1, and the unmasking spelled out.
    await inRow.locator('button.row-select').click();
    const detail = await page.locator('#frame-detail').innerText();
    assert.match(detail, /MASK 1/);
    assert.match(detail, /opcode 1 = text/);
    assert.match(detail, /masking key/);
    assert.match(detail, /on the wire/);
  });

  scenario('05-inspector-70000-bytes', async (page) => {
    await openPage(page, '?inspect');
    assert.equal(await page.isChecked('#inspect'), true);
    await connect(page);
    await page.fill('#message-text', 'hello');
    await page.click('#send-text');
    await page.fill('#random-size', '70000');
    await page.click('#send-random');
    await waitCount(messageRows(page), 2);
    assert.equal(await messageRows(page).nth(1).getAttribute('data-size'), '70000');
    assert.match(await page.textContent('#buffered-peak'), /after send #2/);

    // Random bytes do not compress: with or without permessage-deflate the frame carries at
    // least 70 000 bytes, which needs the 64-bit length.
    for (const dir of ['in', 'out']) {
      const row = frameRows(page, `[data-dir="${dir}"][data-op="binary"]`);
      assert.equal(await row.count(), 1, `one ${dir} binary frame`);
      const len = Number(await row.getAttribute('data-len'));
      assert.ok(len >= 70000 && len < 71000, `${dir} frame length ${len}`);
      assert.equal(await row.getAttribute('data-len-bits'), '64');
      assert.match(await row.innerText(), /64-bit/);
      const header = hexBytes(await row.locator('td.header-hex').innerText());
      assert.equal(header.length, dir === 'in' ? 14 : 10);
      assert.equal(header[0] & 0x8f, 0x82, 'FIN and opcode 2');
      assert.equal(header[1], dir === 'in' ? 0xff : 0x7f, 'MASK bit for the browser only, then 127');
      assert.equal(Number(Buffer.from(header.subarray(2, 10)).readBigUInt64BE()), len, '8-byte big-endian length');
    }
    // Pick the browser's 70 000-byte frame: the anatomy shows the 64-bit length field.
    const big = frameRows(page, '[data-dir="in"][data-op="binary"]');
    const bigLen = Number(await big.getAttribute('data-len'));
    await big.locator('button.row-select').click();
    const detail = await page.locator('#frame-detail').innerText();
    assert.match(detail, /127: 64-bit length follows/);
    assert.ok(detail.includes(bigLen.toString(16).padStart(16, '0').replace(/(..)(?!$)/g, '$1 ')), detail);

    // A close the page starts: the browser drops messages arriving while CLOSING, so the close
    // frames' traces never reach the page, and the page says so.
    await page.fill('#close-code', '1000');
    await page.fill('#close-reason', 'done');
    await page.click('#close-btn');
    await page.waitForSelector('#event-log li[data-type="close"]');
    assert.match((await eventTexts(page, 'close'))[0], /code 1000.*reason "done".*wasClean true/s);
    assert.match((await eventTexts(page, 'note'))[0], /dropped the messages that arrived while CLOSING/);

    // The docs screenshot: the whole page after an inspector session, light and dark,
    // showing the browser's masked 70 000-byte frame taken apart.
    await big.locator('button.row-select').click();
    await page.evaluate(() => { document.querySelector('#event-log').scrollTop = 0; });
    await page.screenshot({ path: path.join(shots, 'inspector-full-page.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: path.join(shots, 'inspector-full-page-dark.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than a 390px screen`);
    await page.locator('#inspector').screenshot({ path: path.join(shots, 'inspector-mobile-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  scenario('06-server-closes-1009', async (page) => {
    // One byte over the server's default --max-message (16 MiB): the server closes with 1009 and
    // traces its close frame first, so the frame table shows what a close frame carries. Chromium
    // sends a message this big as a binary frame with FIN 0 and continuation frames.
    await openPage(page, '?inspect');
    await connect(page);
    await page.click('.presets [data-size="16777217"]');
    assert.equal(await page.inputValue('#random-size'), '16777217');
    await page.click('#send-random');
    await page.waitForSelector('#event-log li[data-type="close"]', { timeout: 45000 });
    const closeOut = frameRows(page, '[data-dir="out"][data-op="close"]');
    assert.equal(await closeOut.count(), 1);
    assert.equal(await closeOut.getAttribute('data-masked'), 'false');
    assert.match(await closeOut.locator('td.header-hex').innerText(), /^88 [0-7][0-9a-f]$/);
    assert.match(await closeOut.locator('td.payload-hex').innerText(), /^03 f1 /); // 0x03f1 = 1009
    assert.match(await closeOut.innerText(), /code 1009 reason "/);
    const first = frameRows(page, '[data-dir="in"]').first();
    assert.equal(await first.getAttribute('data-op'), 'binary');
    assert.equal(await first.getAttribute('data-fin'), 'false', 'Chromium fragments a 16 MiB message');
    assert.ok(await frameRows(page, '[data-dir="in"][data-op="continuation"]').count() >= 1);
    const [close] = await eventTexts(page, 'close');
    assert.match(close, /code 1009/);
    assert.match(close, /message too big/);
    assert.equal(await messageRows(page).count(), 0);
    await srv.waitLog(/ws close 127\.0\.0\.1:\d+ \/inspect code=1009 by=server/);
    await closeOut.locator('button.row-select').click();
    assert.match(await page.locator('#frame-detail').innerText(), /opcode 8 = close/);
  }, { timeout: 90000 });

  scenario('07-refused-url', async (page) => {
    await openPage(page);
    await page.fill('#url', `ws://127.0.0.1:${srv.port}/nope`);
    await page.click('#connect-btn');
    await page.waitForSelector('#event-log li[data-type="close"]');
    await page.waitForSelector('#event-log li[data-type="note"]'); // the page asked the server why
    const types = await page.locator('#event-log li').evaluateAll((lis) => lis.map((li) => li.dataset.type));
    assert.deepEqual(types.filter((t) => t !== 'call'), ['error', 'close', 'note'], 'error then close, no open, then why');
    assert.match((await eventTexts(page, 'note'))[0], /GET \/nope → 404/);
    const [close] = await eventTexts(page, 'close');
    assert.match(close, /code 1006/);
    assert.match(close, /wasClean false/);
    assert.match((await eventTexts(page, 'error'))[0], /could not be established/);
    assert.equal(await page.textContent('#ready-state'), 'CLOSED (3)');
    await srv.waitLog(/"GET \/nope HTTP\/1\.1" 404/);
  }, { allowConsoleErrors: true }); // Chromium logs the failed handshake to the console

  scenario('08-keyboard-only', async (page) => {
    await openPage(page);
    await page.focus('#connect-btn');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#ready-state[data-state="open"]');
    // After open the message field has the focus: type and send with Ctrl+Enter.
    await page.waitForFunction(() => document.activeElement && document.activeElement.id === 'message-text');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('typed');
    await page.keyboard.press('Control+Enter');
    await waitCount(messageRows(page), 1);
    assert.match(await messageRows(page).nth(0).innerText(), /"typed"/);
    // Space on the focused Disconnect button closes with 1000.
    await page.focus('#disconnect-btn');
    await page.keyboard.press('Space');
    await page.waitForSelector('#event-log li[data-type="close"]');
    assert.match((await eventTexts(page, 'close'))[0], /code 1000.*wasClean true/s);
  });
});
