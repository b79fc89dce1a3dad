'use strict';
// The learning page's defects from issue 17, each checked in Debian's headless Chromium against
// the real uvws binary: layout at 1440x900 and on a 390x844 phone, light and dark, contrast of
// every text, what the screen reader hears, and the explanations the page gives when a
// connection fails.
// Run: UVWS_BIN=build/default/uvws NODE_PATH=node_modules node --test test/browser/page.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { ROOT } = require('./helper');
const { browserAndServer, artifactsDir, startUvws } = require('./helper');
const { contrastProblems } = require('./contrast');

const T = { timeout: 90000 };
const WAIT = 15000;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1440, height: 900 };

describe('the learning page (issue 17)', () => {
  const env = browserAndServer(before, after, { launch: { viewport: DESKTOP } });

  // A fresh page at `viewport`; saves a screenshot named `name` when done (-FAILED on failure).
  async function withPage(name, viewport, fn) {
    const page = await env.browser.context.newPage();
    page.setDefaultTimeout(WAIT);
    await page.setViewportSize(viewport);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let failed = true;
    try {
      await fn(page);
      assert.deepEqual(errors, [], 'page errors');
      failed = false;
    } finally {
      await page.screenshot({ path: path.join(artifactsDir(), `page-${name}${failed ? '-FAILED' : ''}.png`), fullPage: true })
        .catch(() => {});
      await page.close().catch(() => {});
    }
  }

  async function open(page, query = '') {
    await page.goto(`${env.srv.origin}/${query}`);
    await page.waitForSelector('html[data-ready="true"]');
  }

  async function connect(page, { inspect = false } = {}) {
    if (inspect) await page.check('#inspect');
    await page.click('#connect-btn');
    await page.waitForSelector('#ready-state[data-state="open"]');
  }

  async function sendText(page, text) {
    const n = await page.locator('#message-list tr.received').count();
    await page.fill('#message-text', text);
    await page.click('#send-text');
    await page.locator('#message-list tr.received').nth(n).waitFor();
  }

  // An inspector session with a text message, a 70 000-byte binary message and a frame taken apart.
  async function inspectorSession(page) {
    await open(page, '?inspect');
    await connect(page);
    await sendText(page, 'hello, see https://www.rfc-editor.org/rfc/rfc6455#section-5.2 for the frame layout');
    await page.fill('#random-size', '70000');
    await page.click('#send-random');
    await page.locator('#message-list tr.received').nth(1).waitFor();
    await page.waitForSelector('#handshake-view:not([hidden])');
    await page.locator('#frame-list tr[data-dir="in"][data-op="text"] button.row-select').click();
    await page.waitForSelector('#frame-detail table.xor');
  }

  const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

  it('shows no empty handshake boxes before an inspector session', T, () => withPage('handshake-hidden', DESKTOP, async (page) => {
    const visibleBoxes = () => page.evaluate(() => [...document.querySelectorAll('#handshake pre, #handshake .accept')]
      .filter((el) => el.getClientRects().length).length);
    await open(page);
    assert.equal(await page.$eval('#handshake-view', (el) => getComputedStyle(el).display), 'none');
    assert.equal(await visibleBoxes(), 0, 'on load');
    await connect(page);
    await sendText(page, 'on /echo');
    assert.equal(await visibleBoxes(), 0, 'during an /echo session');
    await page.click('#disconnect-btn');
    await page.waitForSelector('#ready-state[data-state="closed"]');
    await page.check('#inspect');
    await connect(page);
    await page.waitForSelector('#handshake-view:not([hidden])');
    assert.equal(await visibleBoxes(), 3, 'request, response and accept once /inspect described them');
    assert.match(await page.textContent('#handshake-request'), /^GET \/inspect HTTP\/1\.1/);
  }));

  for (const scheme of ['light', 'dark']) {
    it(`has no horizontal overflow on a 390 px phone, tables scroll inside themselves (${scheme})`, T,
      () => withPage(`phone-${scheme}`, PHONE, async (page) => {
        await page.emulateMedia({ colorScheme: scheme });
        await inspectorSession(page);
        assert.ok(await overflow(page) <= 0, `page is ${await overflow(page)}px wider than the phone`);
        const m = await page.evaluate(() => {
          const box = (el) => el.getBoundingClientRect();
          const wrap = (sel) => document.querySelector(sel).closest('.table-scroll');
          return {
            preview: box(document.querySelector('#message-list tr.received td.preview')).width,
            frames: { right: box(wrap('#frame-table')).right, scrolls: wrap('#frame-table').scrollWidth > wrap('#frame-table').clientWidth },
            xor: { right: box(wrap('#frame-detail table.xor')).right, cells: document.querySelectorAll('#frame-detail table.xor tr:first-child td').length },
            xorScroll: getComputedStyle(wrap('#frame-detail table.xor')).overflowX,
            // past the right edge and not inside a container that scrolls (or clips) within the screen
            wide: [...document.querySelectorAll('#main *')].filter((el) => {
              if (!el.getClientRects().length || box(el).right <= innerWidth + 0.5) return false;
              for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                if (getComputedStyle(p).overflowX !== 'visible' && box(p).right <= innerWidth + 0.5) return false;
              }
              return true;
            }).map((el) => el.tagName + (el.id ? `#${el.id}` : '')),
          };
        });
        assert.ok(m.preview >= 140, `the message preview column is ${m.preview.toFixed(0)}px wide`);
        assert.ok(m.frames.right <= PHONE.width, 'the frame table\'s container ends inside the screen');
        assert.ok(m.frames.scrolls, 'the frame table scrolls inside its container');
        assert.ok(m.xor.right <= PHONE.width, 'the unmasking table\'s container ends inside the screen');
        assert.equal(m.xor.cells, 16, 'all 16 offsets of the unmasking table are there');
        assert.equal(m.xorScroll, 'auto');
        assert.deepEqual(m.wide, [], 'elements past the right edge outside a scrolling container');
        // The URL and the extensions break at their separators, never inside a path segment or a parameter.
        const cut = await page.evaluate(() => ['ws-url', 'ws-extensions'].flatMap((id) => {
          const el = document.getElementById(id);
          const lines = new Set([...el.getClientRects()].map((r) => Math.round(r.top)));
          const broken = [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE && n.data.trim()).filter((n) => {
            const range = document.createRange();
            range.selectNodeContents(n);
            return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
          }).map((n) => `#${id}: ${JSON.stringify(n.data)} (${lines.size} lines)`);
          return broken;
        }));
        assert.deepEqual(cut, [], 'values broken mid-word');
        assert.ok(await page.$eval('#ws-extensions', (el) => el.getClientRects().length > 1 || el.getBoundingClientRect().height > 30),
          'the extensions value needs more than one line on a phone (else this check proves nothing)');
      }));

    it(`every text has a contrast of at least 4.5:1 (${scheme})`, T, () => withPage(`contrast-${scheme}`, DESKTOP, async (page) => {
      await page.emulateMedia({ colorScheme: scheme });
      await inspectorSession(page);
      for (const d of await page.$$('details')) await d.evaluate((el) => { el.open = true; });
      const { checked, problems } = await page.evaluate(contrastProblems, 4.5);
      assert.ok(checked > 300, `checked ${checked} texts`);
      assert.deepEqual(problems, []);
      // And the failure states: a refused connect, its explanation and the red log lines.
      await page.click('#disconnect-btn');
      await page.fill('#url', `ws://127.0.0.1:${env.srv.port}/nope`);
      await page.click('#connect-btn');
      await page.waitForSelector('#connect-why[data-status]');
      const failed = await page.evaluate(contrastProblems, 4.5);
      assert.deepEqual(failed.problems, [], 'after a failed connect');
    }));
  }

  it('the event log does not announce trace entries; a summary region does announce events', T, () => withPage('live', DESKTOP, async (page) => {
    await inspectorSession(page);
    const live = await page.evaluate(() => {
      const log = document.getElementById('event-log');
      const region = log.closest('[aria-live]:not([aria-live="off"])');
      const regions = [...document.querySelectorAll('[aria-live]:not([aria-live="off"])')];
      return {
        logLive: region ? region.id || region.tagName : null,
        traces: log.querySelectorAll('li.trace').length,
        summaries: regions.filter((r) => /event/i.test(r.id)).map((r) => r.textContent),
        inside: regions.some((r) => r.querySelector('li.trace')),
      };
    });
    assert.ok(live.traces >= 5, `${live.traces} trace entries logged`);
    assert.equal(live.logLive, null, 'the log itself is not a live region');
    assert.equal(live.inside, false, 'no live region contains trace entries');
    assert.equal(live.summaries.length, 1, 'one live summary of the events');
    assert.match(live.summaries[0], /message/);
    assert.doesNotMatch(live.summaries[0], /trace/);
  }));

  it('at 1440 px the event log is not squeezed beside an empty inspector card', T, () => withPage('wide-layout', DESKTOP, async (page) => {
    await open(page);
    await connect(page);
    await sendText(page, 'wide');
    const w = await page.evaluate(() => ({
      events: document.getElementById('events').getBoundingClientRect().width,
      inspector: document.getElementById('inspector').getBoundingClientRect().width,
    }));
    assert.ok(w.events >= 600, `event log ${w.events.toFixed(0)}px wide, inspector ${w.inspector.toFixed(0)}px`);
    // And at 1440 px, light and dark, during an inspector session: nothing wider than the window.
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await inspectorSession(page);
      assert.ok(await overflow(page) <= 0, `${scheme}: page ${await overflow(page)}px wider than 1440 px`);
      const log = await page.$eval('#events', (el) => el.getBoundingClientRect().width);
      assert.ok(log >= 350, `with the inspector in use the log is still ${log.toFixed(0)}px wide`);
    }
  }));

  // A connect that fails: the explanation is next to the Connect button, from the server's own answer.
  async function failedConnect(page, url, protocols = '') {
    await page.fill('#url', url);
    await page.fill('#protocols', protocols);
    await page.click('#connect-btn');
    await page.waitForSelector('#connect-why[data-status]');
    const why = await page.evaluate(() => {
      const box = document.getElementById('connect-why');
      const btn = document.getElementById('connect-btn').getBoundingClientRect();
      return { text: box.textContent, status: box.dataset.status, gap: box.getBoundingClientRect().top - btn.bottom };
    });
    assert.ok(why.gap >= 0 && why.gap < 80, `the explanation is right under the button (${why.gap}px)`);
    return why;
  }

  it('after a failed connect to a wrong path the page says 404 next to the button', T, () => withPage('why-404', PHONE, async (page) => {
    await open(page);
    const why = await failedConnect(page, `ws://127.0.0.1:${env.srv.port}/nope`);
    assert.equal(why.status, '404');
    assert.match(why.text, /GET \/nope → 404/);
    assert.match(why.text, /no route at this path/);
    assert.match(why.text, /routes are \/broadcast, \/chat, \/echo and \/inspect\./, 'the routes of /routes.json');
    const close = await page.textContent('#event-log li[data-type="close"]');
    assert.match(close, /code 1006/);
    assert.doesNotMatch(close, /\([^()]*\(/, 'no nested parentheses in the close line');
    await env.srv.waitLog(/"GET \/nope HTTP\/1\.1" 404/);
  }));

  it('a subprotocol /echo does not speak (foo) is explained on the page', T, () => withPage('why-subprotocol', DESKTOP, async (page) => {
    await open(page);
    assert.equal(await page.getAttribute('#protocols', 'placeholder'), 'none', 'the placeholder does not look like a value');
    const help = await page.$$eval('#help-subprotocols a', (as) => as.map((a) => a.href));
    for (const s of ['#section-1.9', '#section-4.2.2', '#section-11.3.4']) {
      assert.ok(help.some((href) => href.endsWith(s)), `the subprotocol help links to RFC 6455 ${s}`);
    }
    const why = await failedConnect(page, `ws://127.0.0.1:${env.srv.port}/echo`, 'foo');
    assert.equal(why.status, '426');
    assert.match(why.text, /\/echo is a WebSocket route/);
    assert.match(why.text, /offered the subprotocol foo/);
    assert.match(why.text, /answered 101 without a Sec-WebSocket-Protocol header/);
    assert.match(why.text, /code 1006/);
    assert.match(await page.textContent('#event-log li[data-type="close"]'), /code 1006/);
    // With a protocol it speaks, the same route opens and names it.
    await page.fill('#protocols', 'foo, uvws-echo');
    await connect(page);
    assert.equal(await page.textContent('#ws-protocol'), '"uvws-echo"');
    assert.equal(await page.isHidden('#connect-why'), true, 'the old explanation is gone');
    // binaryType is a property the page sets, not a call.
    await page.check('#binary-type-arraybuffer');
    const line = page.locator('#event-log li', { hasText: 'ws.binaryType = "arraybuffer"' });
    assert.equal(await line.getAttribute('data-type'), 'property');
    assert.equal(await line.locator('.tag').textContent(), 'property');
  }));

  it('on /echo the sent messages are listed beside the received ones', T, () => withPage('sent-and-received', DESKTOP, async (page) => {
    await open(page);
    await connect(page);
    await sendText(page, 'one');
    await page.click('#send-text-binary');
    await page.locator('#message-list tr.received').nth(1).waitFor();
    const rows = await page.$$eval('#message-list tr', (trs) => trs.map((tr) => [tr.className, tr.dataset.type,
      tr.querySelector('.preview-text').textContent, tr.querySelector('.echo-of').textContent.trim()]));
    assert.deepEqual(rows.map((r) => r.slice(0, 2)), [['sent', 'text'], ['received', 'text'], ['sent', 'binary'], ['received', 'binary']]);
    assert.equal(rows[0][2], '"one"');
    assert.match(rows[0][3], /echoed as #1/);
    assert.match(rows[1][3], /send #1 ✓/);
    assert.equal(await page.textContent('#message-count'), '2', 'the count is of received messages');
    await page.uncheck('#show-sent');
    assert.equal(await page.locator('#message-list tr.sent').first().isVisible(), false, 'hidden when unticked');
    assert.equal(await page.locator('#message-list tr.received').first().isVisible(), true);
  }));

  it('70 000 zero bytes travel as a frame of about a hundred bytes (permessage-deflate)', T, () => withPage('zeros', DESKTOP, async (page) => {
    await open(page, '?inspect');
    await connect(page);
    assert.match(await page.textContent('#ws-extensions'), /permessage-deflate/);
    await page.click('#send-zeros');
    await page.locator('#message-list tr.received').first().waitFor();
    assert.equal(await page.getAttribute('#message-list tr.received', 'data-size'), '70000');
    for (const dir of ['in', 'out']) {
      const row = page.locator(`#frame-list tr[data-dir="${dir}"][data-op="binary"]`);
      await row.waitFor();
      const len = Number(await row.getAttribute('data-len'));
      assert.ok(len > 0 && len < 1000, `${dir} frame of ${len} bytes for 70 000 zeros`);
      assert.equal(await row.getAttribute('data-rsv1'), 'true', `${dir} frame compressed (RSV1)`);
    }
  }));

  it('the server\'s idle ping is explained, and shows in the frame table (server with --ping-interval 1s)', T,
    () => withPage('idle-ping', DESKTOP, async (page) => {
      await open(page);
      assert.match(await page.textContent('#idle-ping-help'), /quiet for 30\s+s/);
      const quick = await startUvws({ args: ['--ping-interval', '1s'] });
      try {
        await page.goto(`${quick.origin}/?inspect`);
        await page.waitForSelector('html[data-ready="true"]');
        await connect(page);
        assert.match(await page.textContent('#quiet'), /No frame for \d+ s: uvws pings a connection that was quiet for 30 s/);
        const ping = page.locator('#frame-list tr[data-dir="out"][data-op="ping"]').first();
        const pong = page.locator('#frame-list tr[data-dir="in"][data-op="pong"]').first();
        await ping.waitFor({ timeout: 10000 });
        await pong.waitFor({ timeout: 10000 });
        assert.equal(await pong.getAttribute('data-masked'), 'true', 'the browser\'s pong is masked');
        // uvws's keep-alive ping carries no payload; the pong answers with the same (none).
        assert.equal(await ping.getAttribute('data-len'), '0');
        assert.equal(await pong.getAttribute('data-len'), '0', 'the pong carries the ping\'s payload');
        const types = await page.$$eval('#event-log li:not(.trace)', (lis) => lis.map((li) => li.dataset.type));
        assert.deepEqual(types.filter((t) => t !== 'call' && t !== 'info'), ['open'], 'no event for ping or pong');
        await page.click('#disconnect-btn');
        await page.waitForSelector('#ready-state[data-state="closed"]');
      } finally {
        await quick.stop();
      }
    }));

  it('the frame decoder takes pasted hex apart like the inspector, and agrees with the server\'s own traces', T,
    () => withPage('decoder', PHONE, async (page) => {
      const traces = [];
      page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
        if (typeof payload === 'string' && payload.startsWith('{"uvws":"frame"')) traces.push(JSON.parse(payload));
      }));
      await open(page, '?inspect');
      await page.click('#decoder-example');
      const rows = await page.$$eval('#decoder-list tr.frame', (trs) => trs.map((tr) => [tr.dataset.dir, tr.dataset.op, tr.dataset.fin]));
      assert.deepEqual(rows, [['in', 'text', 'true'], ['out', 'text', 'false'], ['out', 'ping', 'true'], ['out', 'continuation', 'true']]);
      assert.match(await page.textContent('#decoder-result'), /^22 bytes, 4 frames\.$/);
      assert.match(await page.textContent('#decoder-list tr.frame'), /"Hello"/);
      assert.match(await page.textContent('#decoder-detail'), /masking key: 37 fa 21 3d/);
      assert.ok(await overflow(page) <= 0, 'no horizontal overflow on the phone');

      await page.fill('#decoder-input', '80 02 6c 6f');
      await page.click('#decoder-go');
      assert.match(await page.textContent('[data-testid="decoded-notes"]'), /uvws closes with 1002: continuation frame without a message/);
      await page.fill('#decoder-input', '81 8');
      await page.click('#decoder-go');
      assert.match(await page.textContent('#decoder-result'), /Not hex bytes: odd number of hex digits/);

      // The browser's real frames, as /inspect described them: header + masked payload decode to the same description.
      await connect(page);
      await sendText(page, 'héllo');
      await page.waitForFunction(() => document.querySelectorAll('#frame-list tr[data-dir="in"][data-op="text"]').length === 1);
      const sent = traces.find((t) => t.dir === 'in' && t.op === 'text');
      assert.ok(sent, `a trace of the browser's text frame among ${traces.length}`);
      assert.equal(sent.truncated, false);
      const wire = sent.header + sent.masked_payload;
      await page.fill('#decoder-input', wire);
      await page.click('#decoder-go');
      const decoded = await page.evaluate(async (hexText) => {
        const d = await import('/js/decode.js');
        return d.decodeFrames(d.parseHex(hexText)).frames;
      }, wire);
      assert.equal(decoded.length, 1);
      // "message" (the message's number on this connection) and "message_len" (its size once
      // inflated) describe the connection, not the frame's bytes: the decoder cannot know them.
      const { t, message, message_len: messageLen, ...server } = sent;
      assert.deepEqual([message, messageLen], [1, Buffer.byteLength('héllo')], 'the server numbers the message and sizes it');
      const { t: dt, offset, complete, problems, notes, ...mine } = decoded[0];
      assert.deepEqual(mine, server, 'the decoder describes the frame exactly as the server did');
      assert.deepEqual([offset, complete, problems], [0, true, []]);
      assert.equal(await page.locator('#decoder-list tr.frame').count(), 1);
    }));

  it('the readyState diagram lights up as the socket moves on, and shows what a failed one skipped', T,
    () => withPage('ready-state-diagram', PHONE, async (page) => {
      const diagram = () => page.$$eval('#rs-diagram li', (lis) => lis.map((li) => `${li.textContent}:${li.className || '-'}`));
      await open(page);
      assert.deepEqual(await diagram(), ['CONNECTING:-', 'OPEN:-', 'CLOSING:-', 'CLOSED:-'], 'no socket yet');
      await connect(page);
      assert.deepEqual(await diagram(), ['CONNECTING:visited', 'OPEN:current', 'CLOSING:-', 'CLOSED:-']);
      await page.click('#close-btn');
      await page.waitForSelector('#ready-state[data-state="closed"]');
      assert.deepEqual(await diagram(), ['CONNECTING:visited', 'OPEN:visited', 'CLOSING:visited', 'CLOSED:current']);
      await page.fill('#url', `ws://127.0.0.1:${env.srv.port}/nope`);
      await page.click('#connect-btn');
      await page.waitForSelector('#ready-state[data-state="closed"]');
      assert.deepEqual(await diagram(), ['CONNECTING:visited', 'OPEN:skipped', 'CLOSING:skipped', 'CLOSED:current']);
      assert.ok(await overflow(page) <= 0);
    }));

  it('the lessons run as shown: bufferedAmount loop, reconnect with backoff, heartbeat', T,
    () => withPage('lessons', DESKTOP, async (page) => {
      await open(page);
      await page.waitForFunction(() => window.uvwsLessons);
      assert.match(await page.textContent('#lesson-backpressure-code'), /^async function sendWithBackpressure\(url, log\)/);
      const out = (name) => page.textContent(`#lesson-${name}-out`);
      const bp = await page.evaluate(() => window.uvwsLessons.runLesson('backpressure'));
      assert.ok(bp.peak > 0 && bp.peak <= 1024 * 1024 + 256 * 1024, `bufferedAmount peaked at ${bp.peak}: never much above the mark`);
      assert.ok(bp.waits > 0, 'the loop had to wait');
      assert.match(await out('backpressure'), /sent 32 × 256 KiB = 8 MiB; bufferedAmount peaked at \d+ bytes/);
      await page.click('#lesson-backoff-run');
      await page.waitForFunction(() => /giving up/.test(document.getElementById('lesson-backoff-out').textContent), null, { timeout: 20000 });
      const lines = (await out('backoff')).trim().split('\n');
      assert.equal(lines.length, 4);
      const delays = lines.slice(0, 3).map((l) => Number(/next try in (\d+) ms/.exec(l)[1]));
      delays.forEach((ms, i) => assert.ok(ms >= 100 * 2 ** i && ms <= 200 * 2 ** i, `delay ${i + 1}: ${ms} ms`));
      assert.ok(lines.every((l) => /close 1006/.test(l)));
      const hb = await page.evaluate(() => window.uvwsLessons.runLesson('heartbeat'));
      assert.equal(hb.alive, true);
      assert.equal(hb.rtts.length, 3);
      assert.match(await out('heartbeat'), /beat 3: answered in [\d.]+ ms/);
    }));

  it('"copy as wscat command" gives a command that connects with the same URL and subprotocols', T,
    () => withPage('wscat', DESKTOP, async (page) => {
      await env.browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.srv.origin });
      await open(page);
      await page.fill('#protocols', "foo, uvws-echo");
      const cmd = await page.textContent('#wscat-cmd');
      assert.equal(cmd, `wscat -c 'ws://127.0.0.1:${env.srv.port}/echo' -s 'foo' -s 'uvws-echo' --slash -P`);
      await page.click('#copy-wscat');
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), cmd);
      // Run it (plus a message to send and a second to wait): wscat gets the echo.
      const env2 = { ...process.env, PATH: `${path.join(ROOT, 'node_modules', '.bin')}:${process.env.PATH}`, NO_COLOR: '1' };
      const output = await new Promise((resolve, reject) => {
        execFile('sh', ['-c', `${cmd} -x 'hello from wscat' -w 1`], { env: env2, timeout: 20000 }, (err, stdout, stderr) =>
          (err ? reject(new Error(`${err.message}\n${stdout}${stderr}`)) : resolve(stdout)));
      });
      assert.match(output, /hello from wscat/);
      await env.srv.waitLog(/ws open 127\.0\.0\.1:\d+ \/echo protocol=uvws-echo/);
    }));

  it('the timeline: UTF-8, hex and base64 previews, JSON pretty-printed, search, copy and export', T,
    () => withPage('timeline', DESKTOP, async (page) => {
      await env.browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.srv.origin });
      await open(page, '?inspect');
      await connect(page);
      await sendText(page, '{"greeting":"Grüße","n":[1,2]}');
      await page.fill('#message-text', 'Grüße');
      await page.click('#send-text-binary');
      await page.locator('#message-list tr.received').nth(1).waitFor();
      const previews = () => page.$$eval('#message-list tr', (trs) => trs.map((tr) => tr.querySelector('.preview-text').textContent));
      assert.deepEqual(await previews(), ['"{"greeting":"Grüße","n":[1,2]}"', '"{"greeting":"Grüße","n":[1,2]}"',
        '47 72 c3 bc c3 9f 65', '47 72 c3 bc c3 9f 65']);
      await page.selectOption('#preview-mode', 'utf8');
      assert.equal((await previews())[3], '"Grüße"', 'binary read as UTF-8');
      await page.selectOption('#preview-mode', 'hex');
      assert.match((await previews())[1], /^7b 22 67 72 65 65 74 69 6e 67 22 3a 22 47 72 c3 …$/, 'text as its UTF-8 bytes');
      await page.selectOption('#preview-mode', 'base64');
      assert.equal((await previews())[3], Buffer.from('Grüße').toString('base64'));
      assert.equal((await previews())[1], Buffer.from('{"greeting":"Grüße","n":[1,2]}').toString('base64'));
      await page.selectOption('#preview-mode', 'auto');

      const received = page.locator('#message-list tr.received').first();
      await received.locator('button', { hasText: '{ }' }).click();
      assert.equal(await received.locator('pre.json').textContent(), '{\n  "greeting": "Grüße",\n  "n": [\n    1,\n    2\n  ]\n}');
      await received.locator('button.copy').click();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), '{"greeting":"Grüße","n":[1,2]}');

      await page.fill('#message-search', 'greeting');
      assert.equal(await page.locator('#message-list tr:visible').count(), 2);
      assert.equal(await page.textContent('#search-count'), '2 matching');
      await page.fill('#message-search', '');
      assert.equal(await page.locator('#message-list tr:visible').count(), 4);

      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-session')]);
      const session = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
      assert.deepEqual(session.messages.map((m) => [m.dir, m.type, m.size]),
        [['sent', 'text', 32], ['received', 'text', 32], ['sent', 'binary', 7], ['received', 'binary', 7]]);
      assert.equal(session.messages[1].text, '{"greeting":"Grüße","n":[1,2]}');
      assert.equal(session.messages[3].first_bytes_hex, '4772c3bcc39f65');
      assert.ok(session.events.some((e) => e.type === 'open'));
      assert.ok(session.traces.some((t) => t.uvws === 'handshake'));
      assert.ok(session.traces.filter((t) => t.uvws === 'frame' && t.dir === 'in').length >= 2);
    }));
});
