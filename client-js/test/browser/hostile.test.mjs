// The demos served by a real roomd, in headless Chromium, shown hostile
// values: markup, attribute breakouts and CSS url()s in every field another
// member (or the HTTP API) can set and a demo renders: user ids, presence
// names and colors, message texts, names and colors, typing and cursor
// frames, stroke state and state keys. Nothing may run, load or be
// injected, and the values still show, as text.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { chromiumArgs, mintToken, startRoomd } from '../harness.mjs';

const T = { timeout: 90_000 };
const WAIT = { timeout: 15_000 };
const SECRET = 'hostile-test-secret-0123456789abcdef';
const API_KEY = 'hostile-test-api-key';

let srv;
let browser;
let listener;
const hits = []; // requests that reached the outside listener

before(async () => {
  listener = createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Access-Control-Allow-Origin': '*' });
    res.end('<svg xmlns="http://www.w3.org/2000/svg"/>');
  });
  await new Promise((res) => listener.listen(0, '127.0.0.1', res));
  srv = await startRoomd(['--jwt-secret', SECRET, '--api-key', API_KEY, '--presence-grace', '1s']);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: chromiumArgs,
  });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
  await new Promise((res) => listener?.close(res));
});

const out = () => `http://127.0.0.1:${listener.address().port}`;

/** Hostile values, each reporting to the listener (or setting window.__pwned) if it ever runs or loads. */
const hostile = () => {
  const o = out();
  return {
    name: `<img src="${o}/name" onerror="window.__pwned=1">`,
    sub: `"><svg onload="fetch('${o}/sub')"><img src=${o}/sub2>`,
    text: `<script>window.__pwned=1</script><img src=x onerror="fetch('${o}/text')"><iframe src="${o}/frame"></iframe>`,
    // the attribute breakout that reached innerHTML through a cursor's color
    color: `#000"/><image href="${o}/color"/><foreignObject><img src=x onerror="fetch('${o}/fo')"></foreignObject><path d="`,
    cssColor: `url(${o}/css)`,
    key: `s:<img src=${o}/key onerror=alert(1)>`,
  };
};

function token(sub) {
  const perms = ['join', 'pub', 'pres', 'state', 'observe'];
  return mintToken(SECRET, { sub, exp: Math.floor(Date.now() / 1000) + 600, rooms: { 'chat:*': perms, 'board:*': perms } });
}

/**
 * Opens a demo page as user sub with display name; records dialogs, page
 * errors and CSP violations on it.
 */
async function open(path, sub, name) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await ctx.addInitScript((n) => {
    if (n !== null) localStorage.setItem('roomd.name', n);
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  }, name ?? null);
  const page = await ctx.newPage();
  page.dialogs = [];
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  const sep = path.includes('?') ? '&' : '?';
  await page.goto(srv.http + path + sep + 'token=' + encodeURIComponent(token(sub)));
  return page;
}
const joined = (page) => page.waitForFunction(() => document.body.dataset.joined === '1', null, WAIT);

/** Asserts that nothing hostile ran, loaded or was injected into page. */
async function clean(page, what) {
  const got = await page.evaluate(() => ({
    pwned: window.__pwned,
    csp: window.__csp,
    injected: [...document.querySelectorAll('img, image, iframe, object, embed, foreignObject, script:not([src]), [onerror], [onload], [onclick]')].map((e) => e.outerHTML.slice(0, 120)),
  }));
  assert.equal(got.pwned, undefined, `${what}: hostile script ran`);
  assert.deepEqual(got.injected, [], `${what}: elements injected`);
  assert.deepEqual(got.csp, [], `${what}: something tried to load or run against the policy`);
  assert.deepEqual(page.dialogs, [], `${what}: dialogs opened`);
}

describe('hostile values in the demos', () => {
  test('chat, whiteboard and dashboard render every member-supplied field as text', T, async () => {
    const H = hostile();
    // The victims, first in their rooms.
    const chat = await open('/chat/?room=chat:hostile', 'victim', 'Vic');
    const board = await open('/whiteboard/?room=board:hostile', 'victim', 'Vic');
    const dashChat = await open('/dashboard/?room=chat:hostile&ephemeral=1', 'victim');
    const dashBoard = await open('/dashboard/?room=board:hostile', 'victim');
    await Promise.all([joined(chat), joined(board)]);
    for (const d of [dashChat, dashBoard]) await d.waitForFunction(() => document.querySelector('#status').textContent === 'open', null, WAIT);

    // The attacker: a hostile user id and display name, then hostile
    // presence, messages, typing, cursors, strokes and state keys.
    const evilChat = await open('/chat/?room=chat:hostile', H.sub, H.name);
    const evilBoard = await open('/whiteboard/?room=board:hostile', H.sub, H.name);
    await Promise.all([joined(evilChat), joined(evilBoard)]);
    await evilChat.evaluate(async (H) => {
      const { room } = window.demo;
      await room.updatePresence({ name: H.name, color: H.color });
      await room.publish({ text: H.text, name: H.name, color: H.color });
      await room.publish({ text: H.text, name: H.sub, color: H.cssColor });
      await room.publish(H.text); // not an object: shown as its text
      room.broadcast({ typing: true, name: H.name }, 'typing');
    }, H);
    await evilBoard.evaluate(async (H) => {
      const { room } = window.demo;
      await room.updatePresence({ name: H.name, color: H.cssColor });
      room.broadcast({ x: `${H.text}`, y: 10, name: H.name, color: H.color }, 'cursor');
      await room.set('s:evil', { c: H.color, w: H.text, p: [10, 10, 200, 200] });
      await room.set(H.key, { c: H.cssColor, w: 3, p: [20, 20, 300, 40] });
    }, H);
    // and the HTTP API, whose messages have no sender
    const api = await fetch(`${srv.http}/v1/rooms/chat:hostile/messages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${API_KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ data: { text: H.text, name: H.name, color: H.color } }),
    });
    assert.equal(api.status, 200);

    // The victims show it all, as text.
    await chat.waitForFunction((n) => document.querySelectorAll('.msg').length === n, 4, WAIT);
    const texts = await chat.locator('.msg .text').allTextContents();
    assert.deepEqual(texts, [H.text, H.text, H.text, H.text]);
    await chat.waitForFunction((n) => [...document.querySelectorAll('#people .who')].some((e) => e.textContent === n), H.name, WAIT);
    await chat.waitForFunction((n) => document.querySelector('#typing').textContent === `${n} is typing…`, H.name, WAIT);
    assert.ok((await chat.locator('.msg .meta b').allTextContents()).includes(H.sub), 'a name that is the hostile user id shows as text');

    await board.waitForFunction((n) => document.querySelector('.cursor .label')?.textContent === n, H.name, WAIT);
    await board.waitForFunction(() => document.body.dataset.strokes === '2', null, WAIT);
    await board.waitForFunction(() => document.querySelectorAll('#avatars span').length === 2, null, WAIT);

    await dashChat.waitForFunction(() => document.querySelectorAll('#events [data-kind="message"]').length === 4, null, WAIT);
    await dashChat.waitForFunction((n) => [...document.querySelectorAll('#memberlist .who')].some((e) => e.textContent === n), H.name, WAIT);
    assert.ok((await dashChat.locator('#memberlist .small.muted').allTextContents()).includes(H.sub), 'the hostile user id shows as text');
    await dashBoard.waitForFunction(() => document.querySelectorAll('#events [data-kind="state"]').length === 2, null, WAIT);
    assert.ok((await dashBoard.locator('#events .what').allTextContents()).some((t) => t.startsWith(H.key)), 'the hostile state key shows as text');

    // Anything the markup would have loaded had time to ask; nothing did.
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(hits, [], 'requests reached the outside listener');
    for (const [p, what] of [
      [chat, 'chat'],
      [board, 'whiteboard'],
      [dashChat, 'dashboard (chat)'],
      [dashBoard, 'dashboard (board)'],
      [evilChat, 'the sender\'s own chat'],
      [evilBoard, 'the sender\'s own whiteboard'],
    ]) {
      await clean(p, what);
    }
    const fill = await board.evaluate(() => document.querySelector('.cursor path').getAttribute('fill'));
    assert.equal(fill, '#333', 'a color that is not a plain hex color is not used');
    for (const p of [chat, board, dashChat, dashBoard, evilChat, evilBoard]) await p.context().close();
  });

  test('every page and the SDK come with a policy that stops inline scripts and requests elsewhere', T, async () => {
    for (const path of ['/', '/chat/', '/whiteboard/', '/dashboard/']) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const resp = await page.goto(srv.http + path);
      const csp = resp.headers()['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'/, `${path}: policy ${csp}`);
      const got = await page.evaluate(async (o) => {
        const s = document.createElement('script');
        s.textContent = 'window.__inline = 1';
        document.head.append(s);
        let fetched = false;
        try {
          await fetch(o + '/connect');
          fetched = true;
        } catch {
          /* refused by connect-src */
        }
        return { inline: window.__inline, fetched };
      }, out());
      assert.deepEqual(got, { inline: undefined, fetched: false }, path);
      await ctx.close();
    }
    const sdk = await fetch(srv.http + '/sdk/roomd.min.js');
    assert.match(sdk.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const listing = await fetch(srv.http + '/sdk/');
    assert.equal(listing.status, 404, '/sdk/ is not listed');
    assert.deepEqual(hits, []);
  });
});
