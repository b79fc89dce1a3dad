'use strict';
// Issue 15: the page's URL field offers the exec routes the server has. uvws runs with
// --exec /reverse=examples/exec/reverse.py; the page fills its <datalist> from /routes.json,
// connects to the suggested ws://.../reverse and gets "abc" back as "cba"; the 404 explanation
// names /reverse among the server's routes.
// Run: UVWS_BIN=build/default/uvws NODE_PATH=node_modules node --test test/browser/routes.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { browserAndServer, artifactsDir, ROOT } = require('./helper');

const T = { timeout: 90000 };
const WAIT = 15000;
const REVERSE = `python3 ${path.join(ROOT, 'examples', 'exec', 'reverse.py')}`;

describe('the URL field lists the server routes', () => {
  const env = browserAndServer(before, after, { uvwsArgs: ['--exec', `/reverse=${REVERSE}`] });

  async function withPage(name, fn) {
    const page = await env.browser.context.newPage();
    page.setDefaultTimeout(WAIT);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    let failed = true;
    try {
      await page.goto(`${env.srv.origin}/`);
      await page.waitForSelector('html[data-ready="true"]');
      await fn(page);
      assert.deepEqual(errors, [], 'page errors');
      failed = false;
    } finally {
      await page.screenshot({ path: path.join(artifactsDir(), `routes-${name}${failed ? '-FAILED' : ''}.png`) }).catch(() => {});
      await page.close().catch(() => {});
    }
  }

  const options = (page) => page.$$eval('#url-routes option', (os) => os.map((o) => o.value));

  it('the datalist holds ws://host/route for each route, and /reverse answers', T, () => withPage('datalist', async (page) => {
    const base = `ws://127.0.0.1:${env.srv.port}`;
    await page.waitForSelector('#url-routes option', { state: 'attached' }); // options are never visible
    assert.equal(await page.getAttribute('#url', 'list'), 'url-routes');
    assert.deepEqual(await options(page), ['/broadcast', '/chat', '/echo', '/inspect', '/reverse'].map((r) => base + r));

    await page.uncheck('#compression'); // the suggestions follow the switch
    await page.waitForFunction(() => document.querySelector('#url-routes option').value.endsWith('?deflate=off'));
    const reverse = (await options(page)).find((u) => new URL(u).pathname === '/reverse');
    assert.equal(reverse, `${base}/reverse?deflate=off`);

    await page.fill('#url', reverse);
    await page.click('#connect-btn');
    await page.waitForSelector('#ready-state[data-state="open"]');
    await page.locator('#message-list tr.received').first().waitFor(); // the program's greeting
    await page.fill('#message-text', 'abc');
    await page.click('#send-text');
    const answer = page.locator('#message-list tr.received').nth(1);
    await answer.waitFor();
    assert.match(await answer.textContent(), /cba/);
    assert.doesNotMatch(await answer.textContent(), /abc/);
    await env.srv.waitLog(/reverse/);
  }));

  it('the 404 explanation names the routes /routes.json lists', T, () => withPage('why-404', async (page) => {
    await page.fill('#url', `ws://127.0.0.1:${env.srv.port}/nope`);
    await page.click('#connect-btn');
    await page.waitForSelector('#connect-why[data-status="404"]');
    const why = await page.textContent('#connect-why');
    assert.match(why, /no route at this path/);
    assert.match(why, /routes are \/broadcast, \/chat, \/echo, \/inspect and \/reverse\./);
    const named = await page.$$eval('#connect-why code', (cs) => cs.map((c) => c.textContent));
    assert.deepEqual(named, ['/broadcast', '/chat', '/echo', '/inspect', '/reverse']);
  }));
});
