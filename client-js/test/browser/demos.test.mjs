// End-to-end: the demos served by a real roomd, in headless Chromium.
// SCREENSHOTS=dir saves chat.png, whiteboard.png, dashboard.png and index.png
// there (`npm run screenshots` writes ../docs/img); otherwise into a temp dir.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { chromiumArgs, needChromium, startRoomd } from '../harness.mjs';

const T = { timeout: 60_000 };
const WAIT = { timeout: 15_000 };
const shots = process.env.SCREENSHOTS ? resolve(process.env.SCREENSHOTS) : mkdtempSync(join(tmpdir(), 'roomd-shots-'));
mkdirSync(shots, { recursive: true });

let srv;
let base;
let browser;

before(async () => {
  const executablePath = needChromium(); // before roomd starts: nothing to stop
  if (process.env.ROOMD_URL) base = process.env.ROOMD_URL;
  else {
    srv = await startRoomd(['--presence-grace', '1s']);
    base = srv.http;
  }
  browser = await chromium.launch({
    executablePath,
    args: chromiumArgs,
  });
  console.log('# screenshots in ' + shots);
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

/** A page in its own context (own localStorage), with a display name. */
async function open(path, name) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  if (name) await ctx.addInitScript((n) => localStorage.setItem('roomd.name', n), name);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`# [${name ?? path}] page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`# [${name ?? path}] console: ${m.text()}`));
  await page.goto(base + path);
  return page;
}
const joined = (page) => page.waitForFunction(() => document.body.dataset.joined === '1', null, WAIT);

/** Draws a path given in fractions of the paper's size. */
async function draw(page, pts) {
  const box = await page.locator('#paper').boundingBox();
  const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(pts[0]));
  await page.mouse.down();
  for (const p of pts.slice(1)) await page.mouse.move(...at(p), { steps: 2 });
  await page.mouse.up();
}
const curve = (fn, steps = 40) => Array.from({ length: steps + 1 }, (_, i) => fn(i / steps));
const strokes = (page, n) => page.waitForFunction((n) => document.body.dataset.strokes === String(n), n, WAIT);

describe('demos', () => {
  test('index: links the demos, shows the dev-mode banner', T, async () => {
    const page = await open('/');
    await page.waitForFunction(() => document.body.dataset.ready === '1', null, WAIT);
    assert.equal(await page.locator('#dev').isVisible(), true, 'dev banner shown in dev mode');
    assert.deepEqual(await page.locator('.demo h2').allTextContents(), ['Chat', 'Whiteboard', 'Spectator dashboard']);
    await page.screenshot({ path: join(shots, 'index.png') });
    await page.context().close();
  });

  test('whiteboard: strokes and cursors both ways, a late joiner sees the board, the dashboard sees it all', T, async () => {
    const room = 'board:main';
    const dash = await open(`/dashboard/?room=${room}`);
    await dash.waitForFunction(() => document.querySelector('#status').textContent === 'open', null, WAIT);
    const a = await open(`/whiteboard/?room=${room}`, 'Ada');
    const b = await open(`/whiteboard/?room=${room}`, 'Brian');
    await Promise.all([joined(a), joined(b)]);
    await dash.waitForFunction(() => document.querySelector('#members').textContent === '2', null, WAIT);

    // A draws; both see it. Then B, with another color.
    await a.click('.swatch[data-color="#2563eb"]');
    await draw(a, curve((t) => [0.08 + 0.5 * t, 0.55 - 0.25 * Math.sin(t * Math.PI * 2)]));
    await Promise.all([strokes(a, 1), strokes(b, 1)]);
    await b.click('.swatch[data-color="#e5484d"]');
    await b.click('.width[data-width="12"]');
    await draw(b, curve((t) => [0.72 + 0.14 * Math.cos(t * Math.PI * 2), 0.42 + 0.22 * Math.sin(t * Math.PI * 2)], 48));
    await Promise.all([strokes(a, 2), strokes(b, 2)]);
    await a.click('.swatch[data-color="#16a34a"]');
    await draw(a, curve((t) => [0.1 + 0.45 * t, 0.82 + 0.05 * Math.sin(t * Math.PI * 6)]));
    await Promise.all([strokes(a, 3), strokes(b, 3)]);

    // cursors: each sees the other's
    const boxA = await a.locator('#paper').boundingBox();
    await a.mouse.move(boxA.x + boxA.width * 0.45, boxA.y + boxA.height * 0.3, { steps: 5 });
    await b.waitForSelector('.cursor .label:text("Ada")', WAIT);
    const boxB = await b.locator('#paper').boundingBox();
    await b.mouse.move(boxB.x + boxB.width * 0.62, boxB.y + boxB.height * 0.7, { steps: 5 });
    await a.waitForSelector('.cursor .label:text("Brian")', WAIT);

    // a late joiner gets the whole board from the state snapshot
    const c = await open(`/whiteboard/?room=${room}`, 'Chloe');
    await joined(c);
    await strokes(c, 3);
    await a.waitForFunction(() => document.querySelectorAll('#avatars span').length === 3, null, WAIT);
    await a.screenshot({ path: join(shots, 'whiteboard.png') });

    // the dashboard, over SSE only, saw the same activity
    await dash.waitForFunction(() => document.querySelector('#members').textContent === '3', null, WAIT);
    await dash.waitForFunction(() => document.querySelectorAll('#events [data-kind="state"]').length >= 3, null, WAIT);
    const wsUsed = await dash.evaluate(() => performance.getEntriesByType('resource').some((r) => r.name.includes('/v1/ws')));
    assert.equal(wsUsed, false, 'dashboard uses no WebSocket');
    for (const p of [a, b, c, dash]) await p.context().close();
  });

  test('chat: presence, typing, messages; a closed page leaves the list; the dashboard follows', T, async () => {
    const room = 'chat:lobby';
    const dash = await open(`/dashboard/?room=${room}`);
    await dash.waitForFunction(() => document.querySelector('#status').textContent === 'open', null, WAIT);
    const a = await open(`/chat/?room=${room}`, 'Ada');
    const b = await open(`/chat/?room=${room}`, 'Brian');
    const c = await open(`/chat/?room=${room}`, 'Chloe');
    await Promise.all([joined(a), joined(b), joined(c)]);
    const bConn = await b.evaluate(() => window.demo.client.conn);
    await a.waitForFunction(() => document.querySelectorAll('#people li').length === 3, null, WAIT);
    assert.deepEqual((await a.locator('#people .who').allTextContents()).sort(), ['Ada', 'Brian', 'Chloe']);

    const say = async (page, text) => {
      await page.fill('#text', text);
      await page.press('#text', 'Enter');
    };
    await say(a, 'Hi all! The whiteboard demo is live too.');
    await say(b, 'Hello Ada! Drawing on board:main now.');
    await say(c, 'Joined from the dashboard link. Message rate looks good.');
    await say(a, 'Try closing a tab: you drop off the presence list.');
    for (const p of [a, b, c]) await p.waitForFunction(() => document.querySelectorAll('.msg').length === 4, null, WAIT);

    // typing indicator (ephemeral)
    await b.type('#text', 'typing something', { delay: 10 });
    await a.waitForFunction(() => document.querySelector('#typing').textContent.includes('Brian is typing'), null, WAIT);
    await a.screenshot({ path: join(shots, 'chat.png') });

    // history on join
    const d = await open(`/chat/?room=${room}`, 'Dan');
    await joined(d);
    await d.waitForFunction(() => document.querySelectorAll('.msg').length === 4, null, WAIT);
    await d.context().close();

    await dash.waitForFunction(() => document.querySelectorAll('#events [data-kind="message"]').length === 4, null, WAIT);
    await dash.waitForFunction(() => document.querySelector('#members').textContent === '3', null, WAIT);
    await dash.screenshot({ path: join(shots, 'dashboard.png') });

    // closing B's page drops it from the others' lists (after the presence grace)
    await b.context().close();
    await a.waitForFunction((conn) => !document.querySelector(`#people li[data-conn="${conn}"]`), bConn, WAIT);
    await dash.waitForFunction((conn) => !document.querySelector(`#memberlist li[data-conn="${conn}"]`), bConn, WAIT);
    assert.deepEqual((await a.locator('#people .who').allTextContents()).sort(), ['Ada', 'Chloe']);
    for (const p of [a, c, dash]) await p.context().close();
  });
});
