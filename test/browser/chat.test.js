// The chat panel in two Chromium pages: they join one room, see each other
// in the member list, and what one sends appears in both, in order.
'use strict';
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { browserAndServer, artifactsDir } = require('./helper');

const T = { timeout: 90000 };

describe('chat panel in Chromium', () => {
  const env = browserAndServer(before, after);

  it('two pages talk through a room', T, async () => {
    const { browser, srv } = env;
    const a = await browser.context.newPage();
    const b = await browser.context.newPage();
    try {
      for (const [page, nick] of [[a, 'ada'], [b, 'bob']]) {
        await page.goto(`${srv.origin}/`);
        await page.fill('[data-testid=chat-room]', 'lobby');
        await page.fill('[data-testid=chat-nick]', nick);
        await page.click('[data-testid=chat-join]');
        await page.waitForSelector('[data-testid=chat-text]:not([disabled])');
      }
      await a.waitForFunction(() => document.querySelector('[data-testid=chat-count]').textContent === '2');
      assert.equal(await b.textContent('[data-testid=chat-count]'), '2');
      assert.deepEqual((await a.$$eval('#chat-members li', (els) => els.map((e) => e.textContent))), ['ada', 'bob']);
      assert.match(await a.textContent('[data-testid=chat-lines]'), /bob joined/);

      await a.fill('[data-testid=chat-text]', 'hello from ada');
      await a.press('[data-testid=chat-text]', 'Enter');
      await b.fill('[data-testid=chat-text]', 'hi ada, bob here');
      await b.click('[data-testid=chat-send]');
      for (const page of [a, b]) {
        await page.waitForFunction(() => document.querySelectorAll('#chat-lines li.message').length === 2);
        const lines = await page.$$eval('#chat-lines li.message', (els) => els.map((e) => e.textContent));
        assert.deepEqual(lines, ['adahello from ada', 'bobhi ada, bob here']);
      }
      await a.screenshot({ path: path.join(artifactsDir(), 'chat-two-pages.png'), fullPage: false });

      // The JSON behind the lines, both ways, once "the JSON messages" is ticked.
      assert.equal(await a.locator('#chat-lines li.json').first().isVisible(), false, 'hidden by default');
      await a.check('[data-testid=chat-json-toggle]');
      const json = await a.$$eval('#chat-lines li.json', (els) => els.map((e) => [e.classList.contains('in') ? 'sent' : 'received',
        JSON.parse(e.querySelector('code').textContent)]));
      assert.deepEqual(json[0], ['sent', { type: 'join', room: 'lobby', nick: 'ada' }]);
      assert.equal(json[1][0], 'received');
      assert.equal(json[1][1].type, 'joined');
      assert.ok(json.some(([d, m]) => d === 'sent' && m.type === 'send' && m.text === 'hello from ada'), 'the send');
      assert.ok(json.some(([d, m]) => d === 'received' && m.type === 'message' && m.nick === 'bob' && typeof m.id === 'number'),
        'bob\'s message as the server published it');
      assert.ok(await a.locator('#chat-lines li.json').first().isVisible());

      await b.click('[data-testid=chat-leave]');
      await a.waitForFunction(() => document.querySelector('[data-testid=chat-count]').textContent === '1');
      assert.match(await a.textContent('[data-testid=chat-lines]'), /bob left/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
