// Batched presence and large-room mode, end to end: the chat demo served by a
// real roomd, in headless Chromium, with several members joining and leaving
// at once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { chromiumArgs, needChromium, openChat, startRoomd } from '../harness.mjs';

const T = { timeout: 90_000 };
const WAIT = { timeout: 15_000 };

let srv;
let browser;

before(async () => {
  const executablePath = needChromium();
  // large-room mode above 3 members; no grace, so a closed page leaves at once
  srv = await startRoomd(['--presence-large', '3', '--presence-window', '100ms', '--presence-grace', '-1s']);
  browser = await chromium.launch({
    executablePath,
    args: chromiumArgs,
  });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

const open = (room, name) => openChat(browser, srv.http, room, name, WAIT.timeout);

const connOf = (page) => page.evaluate(() => window.demo.client.conn);

/** What the page's SDK and the demo show of the room's presence. */
const view = (page) =>
  page.evaluate(() => ({
    conns: [...window.demo.room.presence.keys()].sort(),
    count: window.demo.room.presenceCount,
    large: window.demo.room.largeRoom,
    shown: document.querySelector('#count').textContent,
  }));

describe('presence in the browser', () => {
  test('batched presence, then large-room mode and back', T, async () => {
    const room = 'chat:storm';
    // three members join at once: their changes reach each other batched
    const first = await Promise.all(['Ada', 'Brian', 'Chloe'].map((n) => open(room, n)));
    const conns = (await Promise.all(first.map(connOf))).sort();
    for (const p of first) {
      await p.waitForFunction(() => window.demo.room.presence.size === 3, null, WAIT);
      assert.deepEqual(await view(p), { conns, count: 3, large: false, shown: '3' });
    }

    // two more at once: above the threshold, the count instead of the changes
    const more = await Promise.all(['Dan', 'Eve'].map((n) => open(room, n)));
    for (const p of [...first, ...more]) {
      await p.waitForFunction(() => window.demo.room.presenceCount === 5, null, WAIT);
      const v = await view(p);
      assert.equal(v.large, true);
      assert.equal(v.shown, '5');
    }

    // both leave within one window: back to the threshold, the whole list
    await Promise.all(more.map((p) => p.context().close()));
    for (const p of first) {
      await p.waitForFunction(() => !window.demo.room.largeRoom && window.demo.room.presence.size === 3, null, WAIT);
      assert.deepEqual(await view(p), { conns, count: 3, large: false, shown: '3' });
    }
    await Promise.all(first.map((p) => p.context().close()));
  });
});
