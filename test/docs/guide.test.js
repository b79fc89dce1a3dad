'use strict';
// The guide page (web/guide.html + web/js/guide.js) in Debian's headless Chromium, against the real
// uvws binary: rendered headings and their ids, rewritten links between parts, navigation, the
// theme switch, the browser client's guide links, and every snippet of docs/browser-api.md run in
// the page's console (as a reader would paste them).
// Run: UVWS_BIN=build/default/uvws NODE_PATH=node_modules node --test test/docs/guide.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const { startUvws, launchChromium } = require('../browser/helper');

const ROOT = path.resolve(__dirname, '..', '..');
const DOCS = path.join(ROOT, 'docs');
const T = { timeout: 120000 };

// web/js/guide.js is an ES module for the browser (<script type="module">), but nothing tells
// Node so: web/js has no package.json with "type": "module" (uvws would serve it, and install it,
// as one more public file), and Node before 20.19 / 22.7 loads a .js file outside such a package
// as CommonJS ("SyntaxError: Unexpected token 'export'"). A data: URL of type text/javascript is
// always loaded as a module; the sourceURL comment keeps web/js/guide.js and its line numbers in
// stack traces. guide.js imports nothing, so no relative specifier has to resolve from the data:
// URL (one would fail loudly).
function importBrowserModule(file) {
  const source = `${fs.readFileSync(file, 'utf8')}\n//# sourceURL=${pathToFileURL(file).href}\n`;
  return import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);
}

describe('the guide page', () => {
  let srv;
  let browser;
  let guide; // web/js/guide.js, imported in Node: the same renderer the page uses
  let servedByUvws = true;

  before(async () => {
    guide = await importBrowserModule(path.join(ROOT, 'web', 'js', 'guide.js'));
    srv = await startUvws();
    browser = await launchChromium();
    const res = await fetch(`${srv.origin}/docs/README.md`);
    if (res.status === 404) {
      // This uvws does not serve docs/ yet: serve the files from the tree so the page itself is
      // still tested. test/docs/check_docs.py fails in that case, so nothing is hidden.
      servedByUvws = false;
      await browser.context.route(`${srv.origin}/docs/**`, (route) => {
        const rel = decodeURIComponent(new URL(route.request().url()).pathname.slice('/docs/'.length));
        const file = path.join(DOCS, rel);
        if (!file.startsWith(DOCS + path.sep) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
        return route.fulfill({ status: 200, contentType: 'text/markdown; charset=utf-8', body: fs.readFileSync(file) });
      });
    }
  });

  after(async () => {
    if (browser) await browser.close();
    if (srv) await srv.stop();
  });

  async function open(query) {
    const page = await browser.context.newPage();
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    await page.goto(`${srv.origin}/guide.html${query}`);
    await page.waitForSelector('body[data-ready]');
    return { page, errors };
  }

  it('uvws serves the Markdown (else the test serves it itself)', T, (t) => {
    if (!servedByUvws) t.diagnostic('uvws answered 404 for /docs/README.md: the files were served by the test');
    assert.ok(true);
  });

  it('renders frames.md with the headings and ids of the Markdown', T, async () => {
    const { page, errors } = await open('?frames');
    const expected = guide.render(fs.readFileSync(path.join(DOCS, 'frames.md'), 'utf8')).headings;
    const got = await page.$$eval('#doc :is(h1,h2,h3,h4)', (hs) => hs.map((h) => ({
      level: Number(h.tagName[1]), id: h.id, text: h.textContent.replace(/^#/, '').trim(),
    })));
    assert.deepEqual(got.map((h) => [h.level, h.id]), expected.map((h) => [h.level, h.id]));
    assert.equal(got[0].text, 'Frames: the WebSocket wire format');
    for (const id of ['the-header-bit-by-bit', 'masking', 'fragmentation', 'control-frames-ping-pong-close',
      'compression-rsv1-and-permessage-deflate', 'utf-8-validation-and-why-it-fails-fast']) {
      assert.ok(got.some((h) => h.id === id), `heading #${id}`);
    }
    assert.equal(await page.title(), 'Frames: the WebSocket wire format · uvws guide');
    // code blocks, tables, inline code, the table of contents
    assert.ok(await page.locator('#doc pre[data-lang="console"] code').count() >= 3);
    assert.ok(await page.locator('#doc table.data tbody tr').count() >= 3);
    assert.ok(await page.locator('#doc p code').count() > 10);
    assert.equal(await page.locator('#toc a[href="#masking"]').count(), 1);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('rewrites links between parts and keeps anchors; pager and parts navigate', T, async () => {
    const { page, errors } = await open('?frames#masking');
    assert.ok(await page.locator('#masking').isVisible());
    const inView = await page.$eval('#masking', (el) => {
      const r = el.getBoundingClientRect();
      return r.top >= 0 && r.top < window.innerHeight;
    });
    assert.ok(inView, 'the #masking heading is scrolled into view');
    const hrefs = await page.$$eval('#doc a', (as) => as.map((a) => a.getAttribute('href')));
    assert.ok(hrefs.includes('guide.html?closing'), 'closing.md became guide.html?closing');
    assert.ok(hrefs.includes('guide.html?inside-uvws#how-a-byte-travels'), 'anchor kept');
    assert.ok(!hrefs.some((h) => /\.md(#|$)/.test(h)), `no raw .md links: ${hrefs.join(' ')}`);
    assert.equal(await page.locator('#parts a[aria-current="page"]').textContent(), 'Frames');
    await page.click('#pager a[rel="next"]');
    await page.waitForSelector('body[data-ready="closing"]');
    assert.equal(await page.locator('#doc h1').textContent(), '#Closing: the close handshake and status codes');
    await page.click('#parts a[href="guide.html?README"]');
    await page.waitForSelector('body[data-ready="README"]');
    const img = await open('?README');
    assert.deepEqual(errors, []);
    await img.page.close();
    await page.close();
  });

  it('switches between system, light and dark themes', T, async () => {
    const { page } = await open('?handshake');
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.click('#theme');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
    const light = await bg();
    await page.click('#theme');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.notEqual(await bg(), light);
    await page.click('#theme');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), undefined);
    await page.close();
  });

  it('each help text of the browser client links to an existing guide section', T, async () => {
    const page = await browser.context.newPage();
    await page.goto(`${srv.origin}/`);
    const links = await page.$$eval('details.help', (ds) => ds.map((d) => [d.id,
      [...d.querySelectorAll('a[href^="guide.html?"]')].map((a) => a.getAttribute('href'))]));
    assert.equal(links.length, 13); // eleven parts of the raw-API client, the server-side scenarios and the chat panel
    for (const [id, hrefs] of links) {
      assert.equal(hrefs.length, 1, `#${id} has one guide link`);
      const { page: g } = await open(hrefs[0].slice('guide.html'.length));
      const anchor = hrefs[0].split('#')[1];
      assert.equal(await g.locator(`[id="${anchor}"]`).count(), 1, `${hrefs[0]} (from #${id}) has its section`);
      await g.close();
    }
    await page.close();
  });

  it('every snippet in browser-api.md runs in the page', T, async () => {
    const md = fs.readFileSync(path.join(DOCS, 'browser-api.md'), 'utf8');
    const port = new URL(srv.origin).port;
    const snippets = [...md.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1].replaceAll('8080', port));
    assert.ok(snippets.length >= 6, `found ${snippets.length} snippets`);
    const page = await browser.context.newPage();
    const logs = [];
    page.on('console', (msg) => logs.push(msg.text()));
    await page.goto(`${srv.origin}/`);
    for (const [i, code] of snippets.entries()) {
      const before = logs.length;
      await page.evaluate(`(async () => {\n${code}\n})()`).catch((err) => {
        throw new Error(`snippet ${i + 1} threw: ${err.message}\n${code}`);
      });
      assert.ok(logs.length > before, `snippet ${i + 1} printed something`);
    }
    for (const line of ['readyState 3', 'protocol uvws-echo', 'text echo: Grüße', 'close 1006 false',
      '4000 done true', '1001 InvalidAccessError', '4000 SyntaxError', 'bufferedAmount once drained: 0']) {
      assert.ok(logs.includes(line), `console printed ${JSON.stringify(line)}: ${JSON.stringify(logs)}`);
    }
    assert.ok(logs.some((l) => /^1009 message exceeds the size limit/.test(l)), 'the 1009 snippet');
    await page.close();
  });
});
