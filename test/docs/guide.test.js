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
const { startUvws, launchChromium, importBrowserModule } = require('../browser/helper');
const { contrastProblems } = require('../browser/contrast');

const ROOT = path.resolve(__dirname, '..', '..');
const DOCS = path.join(ROOT, 'docs');
const T = { timeout: 120000 };

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

  it('every part fits a 390 px phone in light and dark; code blocks scroll inside themselves', T, async () => {
    const page = await browser.context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [part] of guide.PARTS) {
        await page.goto(`${srv.origin}/guide.html?${part}`);
        await page.waitForSelector(`body[data-ready="${part}"]`);
        const m = await page.evaluate(() => ({
          width: document.documentElement.scrollWidth,
          inner: window.innerWidth,
          pres: [...document.querySelectorAll('#doc pre')].map((p) => ({
            right: p.getBoundingClientRect().right, scrolls: p.scrollWidth > p.clientWidth,
            overflow: getComputedStyle(p).overflowX,
          })),
        }));
        assert.ok(m.width <= m.inner, `${part} (${scheme}) is ${m.width}px wide on a ${m.inner}px screen`);
        for (const [i, p] of m.pres.entries()) {
          assert.ok(p.right <= m.inner, `${part}: <pre> ${i + 1} ends at ${p.right}px, past the screen`);
          if (p.scrolls) assert.equal(p.overflow, 'auto', `${part}: <pre> ${i + 1} scrolls inside itself`);
        }
      }
    }
    // Following a link to a section does not scroll sideways.
    await page.goto(`${srv.origin}/guide.html?frames#masking`);
    await page.waitForSelector('body[data-ready="frames"]');
    assert.equal(await page.evaluate(() => window.scrollX), 0, 'no sideways scroll to #masking');
    await page.close();
  });

  it('every text of every part has a contrast of at least 4.5:1, light and dark', T, async () => {
    const page = await browser.context.newPage();
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const [part] of guide.PARTS) {
        await page.goto(`${srv.origin}/guide.html?${part}`);
        await page.waitForSelector(`body[data-ready="${part}"]`);
        const { checked, problems } = await page.evaluate(contrastProblems, 4.5);
        assert.ok(checked > 20, `${part}: checked ${checked} texts`);
        assert.deepEqual(problems, [], `${part} (${scheme})`);
      }
    }
    await page.close();
  });

  it('links to the repository README go to the page\'s own explanation, or say where the file is', T, async () => {
    const { page, errors } = await open('?wscat');
    await page.click('#doc a[href="./#help-trace-format"]');
    await page.waitForSelector('html[data-ready="true"]');
    await page.waitForFunction(() => document.getElementById('help-trace-format').open);
    assert.match(await page.textContent('#help-trace-format'), /"uvws":"frame"/);
    const inView = await page.$eval('#help-trace-format', (el) => {
      const r = el.getBoundingClientRect();
      return r.top >= 0 && r.top < window.innerHeight;
    });
    assert.ok(inView, 'the format is scrolled into view');
    const many = await open('?many');
    assert.equal(await many.page.locator('#doc a[href="./#help-chat"]').count(), 1, 'the chat protocol link');
    const readme = await open('?README');
    assert.match(await readme.page.textContent('#doc .repo-ref'), /README\s+\(README\.md\s+in the repository: this server does not serve it\)/);
    assert.deepEqual([...errors, ...many.errors, ...readme.errors], []);
    for (const p of [page, many.page, readme.page]) await p.close();
  });

  it('an unknown part says so instead of showing the contents', T, async () => {
    const { page, errors } = await open('?no-such-part');
    assert.equal(await page.evaluate(() => document.body.dataset.ready), 'not-found');
    assert.match(await page.textContent('[data-testid="not-found"]'), /no part\s+called no-such-part/);
    assert.equal(await page.title(), 'Part not found · uvws guide');
    assert.equal(await page.locator('#doc h2').count(), 0, 'not the contents');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('highlights the section in the URL, on load and after following a link', T, async () => {
    const { page, errors } = await open('?frames#masking');
    const bg = (id) => page.$eval(`[id="${id}"]`, (el) => getComputedStyle(el).backgroundColor);
    const plain = await bg('fragmentation');
    assert.notEqual(await bg('masking'), plain, 'the #masking heading is highlighted');
    await page.click('#toc a[href="#fragmentation"]');
    await page.waitForFunction(() => document.getElementById('fragmentation').classList.contains('is-target'));
    assert.notEqual(await bg('fragmentation'), plain, 'the followed section is highlighted');
    assert.equal(await bg('masking'), plain, 'the previous one no longer is');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('each code block has a copy button that copies its text', T, async () => {
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: srv.origin });
    const { page, errors } = await open('?wscat');
    const blocks = await page.locator('#doc pre').count();
    assert.ok(blocks >= 3, `${blocks} code blocks`);
    assert.equal(await page.locator('#doc .code-block > button.copy').count(), blocks, 'one button per block');
    const block = page.locator('#doc .code-block').nth(1);
    await block.locator('button.copy').click();
    await page.waitForFunction((el) => el.textContent === 'Copied', await block.locator('button.copy').elementHandle());
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, await block.locator('pre code').textContent());
    assert.ok(copied.length > 20);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('the browser client links to the guide from its header', T, async () => {
    const page = await browser.context.newPage();
    await page.goto(`${srv.origin}/`);
    await page.click('header.site a[href="guide.html"]');
    await page.waitForSelector('body[data-ready="README"]');
    assert.ok(await page.locator('#doc h1').count() === 1);
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
    assert.equal(links.length, 17); // thirteen parts of the raw-API client (subprotocols and the trace format among them), the server-side scenarios, the chat panel, the decoder, the lessons
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
    const snippets = [...md.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    assert.ok(snippets.length >= 6, `found ${snippets.length} snippets`);
    // They reach the server that served the page (location.host), whatever its port: run as written.
    for (const [i, code] of snippets.entries()) assert.doesNotMatch(code, /:\d{2,5}\//, `snippet ${i + 1} hard-codes a port`);
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
