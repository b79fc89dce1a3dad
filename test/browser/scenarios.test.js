'use strict';
// The learning page's compression switch, length-edge buttons and server-side scenarios in
// Chromium: the real uvws binary serves web/ and its routes on a loopback port; Debian's
// headless Chromium (playwright-core) clicks as a learner would.
//
// - compression off (?deflate=off): each length-edge button gives exactly the 7/16/64-bit
//   encoding it names, both ways; compression on: the page says why it does not, and the frame
//   names its message's size before compression;
// - each scenario button on /inspect produces the event it describes: a ping answered by a pong,
//   a message in fragments with a ping between, the server's close (code, reason, wasClean
//   true), a dropped connection (1006, wasClean false), an invalid frame the browser rejects
//   (close 1002 sent to the server, 1006 to the page).
//
// Run: UVWS_BIN=build/default/uvws node --test test/browser/scenarios.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { browserAndServer } = require('./helper');

const T = { timeout: 90000 };
const WAIT = 15000;

describe('learning page: compression switch and server-side scenarios in Chromium', () => {
  const env = browserAndServer(before, after);

  async function withPage(fn, { allowConsoleErrors = false } = {}) {
    if (!env.browser) throw new Error('Chromium did not start (see the before hook error)');
    const page = await env.browser.context.newPage();
    page.setDefaultTimeout(WAIT);
    const problems = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !allowConsoleErrors) problems.push(`console error: ${m.text()}`);
    });
    try {
      await page.goto(`${env.srv.origin}/?inspect`);
      await page.waitForSelector('html[data-ready="true"]');
      await fn(page);
      assert.deepEqual(problems, [], 'the page logged errors');
    } finally {
      await page.close().catch(() => {});
    }
  }

  async function connect(page) {
    await page.click('#connect-btn');
    await page.waitForSelector('#ready-state[data-state="open"]');
  }

  const frameRows = (page, filter = '') => page.locator(`#frame-list tr${filter}`);

  async function sendSize(page, size) {
    const before = await page.locator('#message-list tr').count();
    await page.click(`.presets [data-size="${size}"]`);
    await page.click('#send-random');
    await page.locator('#message-list tr').nth(before).waitFor();
  }

  const EDGES = [[125, '7'], [126, '16'], [65535, '16'], [65536, '64']];

  it('compression off: each length-edge button gives exactly the encoding it names', T, async () => {
    await withPage(async (page) => {
      assert.equal(await page.isChecked('#compression'), true, 'compression is on by default');
      await page.uncheck('#compression');
      assert.equal(await page.inputValue('#url'), `ws://127.0.0.1:${env.srv.port}/inspect?deflate=off`);
      // the switch and the URL stay in step both ways
      await page.check('#compression');
      assert.equal(await page.inputValue('#url'), `ws://127.0.0.1:${env.srv.port}/inspect`);
      await page.fill('#url', `ws://127.0.0.1:${env.srv.port}/inspect?deflate=off`);
      assert.equal(await page.isChecked('#compression'), false);
      await connect(page);
      assert.equal(await page.textContent('#ws-extensions'), '""');
      for (const [size, bits] of EDGES) {
        await sendSize(page, size);
        assert.equal(await page.getAttribute('#length-note', 'data-compressed'), 'false');
        assert.match(await page.textContent('#length-note'), new RegExp(`exactly that length, a ${bits}-bit length`));
        for (const dir of ['in', 'out']) {
          const row = frameRows(page, `[data-dir="${dir}"][data-op="binary"][data-len="${size}"]`);
          await row.waitFor();
          assert.equal(await row.count(), 1, `one ${dir} frame of ${size} bytes`);
          assert.equal(await row.getAttribute('data-len-bits'), bits, `${dir} ${size}`);
          assert.equal(await row.getAttribute('data-rsv1'), 'false');
          assert.equal(await row.getAttribute('data-message-len'), String(size));
          assert.match(await row.locator('.len-bits').innerText(), new RegExp(`^${bits}-bit$`));
        }
      }
    });
  });

  it('compression on: the page says why the lengths differ, and shows both sizes', T, async () => {
    await withPage(async (page) => {
      assert.equal(await page.getAttribute('#length-note', 'data-compressed'), 'true');
      assert.match(await page.textContent('#length-note'), /Untick Compression/);
      await connect(page);
      assert.match(await page.textContent('#ws-extensions'), /permessage-deflate/);
      await sendSize(page, 125);
      const note = await page.textContent('#length-note');
      assert.equal(await page.getAttribute('#length-note', 'data-compressed'), 'true');
      assert.match(note, /This connection compresses/);
      assert.match(note, /not the one you chose/);
      const row = frameRows(page, '[data-dir="in"][data-op="binary"]');
      await row.waitFor();
      assert.equal(await row.getAttribute('data-rsv1'), 'true');
      assert.notEqual(await row.getAttribute('data-len'), '125', 'Chromium compressed it');
      assert.equal(await row.getAttribute('data-message-len'), '125');
      assert.match(await row.locator('[data-testid="message-len"]').innerText(), /125 B before compression/);
      // 70 000 random bytes: the echo's frame names its message, linked to the received row
      await page.fill('#random-size', '70000');
      await page.click('#send-random');
      await page.locator('#message-list tr').nth(1).waitFor();
      const out = frameRows(page, '[data-dir="out"][data-op="binary"][data-message="2"]');
      await out.waitFor();
      assert.equal(await out.getAttribute('data-message-len'), '70000');
      assert.notEqual(await out.getAttribute('data-len'), '70000');
      assert.match(await out.innerText(), /70\u202f000 B before compression/);
      const href = await out.locator('a.msg-link').getAttribute('href');
      const target = page.locator(href);
      assert.equal(await target.getAttribute('data-size'), '70000', `${href} is the received 70 000-byte message`);
      const back = await target.locator('a.frame-link').getAttribute('href');
      assert.equal(await page.locator(back).getAttribute('data-message'), '2');
    });
  });

  it('scenario buttons are off until an /inspect socket is open', T, async () => {
    await withPage(async (page) => {
      assert.equal(await page.isDisabled('[data-testid="scenario-ping"]'), true);
      await page.uncheck('#inspect');
      await connect(page);
      assert.equal(await page.isDisabled('[data-testid="scenario-ping"]'), true, 'not on /echo');
    });
  });

  it('server pings now: the browser answers with a pong, no event', T, async () => {
    await withPage(async (page) => {
      await connect(page);
      await page.click('[data-testid="scenario-ping"]');
      await frameRows(page, '[data-dir="out"][data-op="ping"]').waitFor();
      await frameRows(page, '[data-dir="in"][data-op="pong"]').waitFor();
      assert.equal(await page.getAttribute('#scenario-status', 'data-state'), 'answered');
      assert.equal(await page.locator('#message-list tr').count(), 0, 'no message event');
      const pong = await frameRows(page, '[data-dir="in"][data-op="pong"]').innerText();
      assert.match(pong, /uvws ping/, 'the pong carries the ping payload');
    });
  });

  it('a message in fragments with a ping between: one message event', T, async () => {
    await withPage(async (page) => {
      await connect(page);
      await page.click('[data-testid="scenario-fragments"]');
      await page.locator('#message-list tr').first().waitFor();
      const msg = page.locator('#message-list tr').first();
      assert.match(await msg.innerText(), /Fragmented: three frames, one message/);
      assert.match(await msg.innerText(), /no send pending/);
      await frameRows(page, '[data-dir="out"][data-op="continuation"][data-fin="true"]').waitFor();
      const outs = await frameRows(page, '[data-dir="out"]').evaluateAll((rows) => rows.map((r) => `${r.dataset.op}:${r.dataset.fin}`));
      assert.deepEqual(outs, ['text:false', 'ping:true', 'continuation:false', 'continuation:true']);
      await frameRows(page, '[data-dir="in"][data-op="pong"]').waitFor();
      assert.equal(await page.getAttribute('#ready-state', 'data-state'), 'open');
    });
  });

  async function closeEvent(page) {
    await page.waitForSelector('#scenario-status[data-state="closed"]', { timeout: WAIT });
    return {
      code: await page.getAttribute('#scenario-status', 'data-close-code'),
      wasClean: await page.getAttribute('#scenario-status', 'data-was-clean'),
      log: (await page.locator('#event-log li[data-type="close"]').allInnerTexts()).join('\n'),
    };
  }

  it('server closes first with a chosen code and reason: wasClean true', T, async () => {
    await withPage(async (page) => {
      await connect(page);
      await page.fill('#scenario-code', '1005');
      await page.click('[data-testid="scenario-close"]');
      await page.waitForSelector('#scenario-status[data-state="refused"]');
      assert.match(await page.textContent('#scenario-status'), /1000-1003, 1007-1014 or 3000-4999/);
      await page.fill('#scenario-code', '4321');
      await page.fill('#scenario-reason', 'bis später');
      await page.click('[data-testid="scenario-close"]');
      const ev = await closeEvent(page);
      assert.deepEqual([ev.code, ev.wasClean], ['4321', 'true']);
      assert.match(ev.log, /reason "bis später"/);
      const close = frameRows(page, '[data-dir="out"][data-op="close"]');
      assert.match(await close.innerText(), /code 4321 reason "bis sp/);
      await env.srv.waitLog(/ws close 127\.0\.0\.1:\d+ \/inspect code=4321 by=server/);
    });
  });

  it('server drops the TCP connection: 1006, wasClean false', T, async () => {
    await withPage(async (page) => {
      await connect(page);
      await page.click('[data-testid="scenario-drop"]');
      const ev = await closeEvent(page);
      assert.deepEqual([ev.code, ev.wasClean], ['1006', 'false']);
      assert.equal(await frameRows(page, '[data-op="close"]').count(), 0, 'no close frame either way');
    });
  });

  it('server sends an invalid frame: the browser fails the connection with 1002', T, async () => {
    await withPage(async (page) => {
      await connect(page);
      const before = env.srv.lines.length;
      await page.click('[data-testid="scenario-invalid"]');
      const ev = await closeEvent(page);
      assert.deepEqual([ev.code, ev.wasClean], ['1006', 'false']);
      assert.ok(await page.locator('#event-log li[data-type="error"]').count() >= 1, 'an error event first');
      const raw = frameRows(page, '[data-dir="out"][data-opcode="3"]');
      assert.equal(await raw.count(), 1, 'the frame table shows the invalid frame');
      assert.match(await raw.innerText(), /reserved/);
      assert.match(await page.textContent('#scenario-status'), /sent close 1002/);
      // what the browser sent the server: a close frame with 1002 (this connection's log line)
      const deadline = Date.now() + WAIT;
      while (!env.srv.lines.slice(before).some((l) => /\/inspect code=1002 by=client/.test(l))) {
        assert.ok(Date.now() < deadline, `no "code=1002 by=client" in the server's log:\n${env.srv.log()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }, { allowConsoleErrors: true }); // Chromium logs why it failed the connection
  });
});
