// permessage-deflate in the browser: Chromium offers the extension on every
// WebSocket, a node with compression on accepts it, and the chat demo's SDK
// (unchanged) gets its long messages compressed and inflated natively.
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
  srv = await startRoomd(['--compression']);
  browser = await chromium.launch({ executablePath, args: chromiumArgs });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
});

const open = (room, name) => openChat(browser, srv.http, room, name, WAIT.timeout);

/** The node's counter of messages sent compressed, and their raw and wire bytes. */
async function deflated() {
  const text = await (await fetch(srv.http + '/metrics')).text();
  const get = (name) => Number(text.match(new RegExp('^' + name + ' (\\S+)$', 'm'))?.[1] ?? NaN);
  return {
    messages: get('roomd_ws_deflate_messages_total'),
    raw: get('roomd_ws_deflate_raw_bytes_total'),
    wire: get('roomd_ws_deflate_wire_bytes_total'),
  };
}

describe('compression in the browser', () => {
  test('the extension is negotiated and long messages arrive compressed', T, async () => {
    const room = 'chat:deflate';
    const [ada, ben] = await Promise.all([open(room, 'Ada'), open(room, 'Ben')]);

    // What Chromium's own WebSocket negotiated with the node.
    const ext = await ada.evaluate(
      (url) =>
        new Promise((res, rej) => {
          const ws = new WebSocket(url, 'roomd.v1');
          ws.onopen = () => {
            res(ws.extensions);
            ws.close();
          };
          ws.onerror = () => rej(new Error('websocket failed'));
        }),
      srv.ws,
    );
    assert.equal(ext, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');

    const before = await deflated();
    const text = 'A long chat message that compresses well. '.repeat(12).trim();
    await ada.fill('#text', text);
    await ada.press('#text', 'Enter');
    await ben.waitForFunction((t) => [...document.querySelectorAll('.msg .text')].some((e) => e.textContent === t), text, WAIT);

    const after = await deflated();
    assert.ok(after.messages > before.messages, `messages compressed: ${before.messages} → ${after.messages}`);
    assert.ok(after.wire - before.wire < (after.raw - before.raw) / 2, `compressed ${after.raw - before.raw} bytes to ${after.wire - before.wire}`);

    // A short one goes as it is, and arrives as well.
    await ben.fill('#text', 'ok!');
    await ben.press('#text', 'Enter');
    await ada.waitForFunction(() => [...document.querySelectorAll('.msg .text')].some((e) => e.textContent === 'ok!'), null, WAIT);
    await Promise.all([ada, ben].map((p) => p.context().close()));
  });
});
