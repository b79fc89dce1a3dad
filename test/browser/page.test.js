'use strict';
// The learning page's defects from issue 17, each checked in Debian's headless Chromium against
// the real uvws binary: layout at 1440x900 and on a 390x844 phone, light and dark, contrast of
// every text, what the screen reader hears, and the explanations the page gives when a
// connection fails.
// Run: UVWS_BIN=build/default/uvws NODE_PATH=node_modules node --test test/browser/page.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { browserAndServer, artifactsDir } = require('./helper');
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
    const n = await page.locator('#message-list tr').count();
    await page.fill('#message-text', text);
    await page.click('#send-text');
    await page.locator('#message-list tr').nth(n).waitFor();
  }

  // An inspector session with a text message, a 70 000-byte binary message and a frame taken apart.
  async function inspectorSession(page) {
    await open(page, '?inspect');
    await connect(page);
    await sendText(page, 'hello, see https://www.rfc-editor.org/rfc/rfc6455#section-5.2 for the frame layout');
    await page.fill('#random-size', '70000');
    await page.click('#send-random');
    await page.locator('#message-list tr').nth(1).waitFor();
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
            preview: box(document.querySelector('#message-list td.preview')).width,
            frames: { right: box(wrap('#frame-table')).right, scrolls: wrap('#frame-table').scrollWidth > wrap('#frame-table').clientWidth },
            xor: { right: box(wrap('#frame-detail table.xor')).right, cells: document.querySelectorAll('#frame-detail table.xor tr:first-child td').length },
            xorScroll: getComputedStyle(wrap('#frame-detail table.xor')).overflowX,
            wide: [...document.querySelectorAll('#main *')].filter((el) => el.getClientRects().length
              && box(el).right > innerWidth + 0.5 && !el.closest('.table-scroll')).map((el) => el.tagName + (el.id ? `#${el.id}` : '')),
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
  }));
});
