import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { Client, tokenExpiry, wsURL } from '../../dist/index.js';
import { FakeWS, handshake, tick, waitFor } from './fake.mjs';

let client;
beforeEach(() => FakeWS.reset());
afterEach(() => {
  client?.close();
  mock.timers.reset();
});

const jwt = (claims) =>
  ['e30', Buffer.from(JSON.stringify(claims)).toString('base64url'), 'sig'].join('.');

test('URLs', () => {
  assert.equal(wsURL('http://h:1'), 'ws://h:1/v1/ws');
  assert.equal(wsURL('https://h/'), 'wss://h/v1/ws');
  assert.equal(wsURL('wss://h/custom/ws'), 'wss://h/custom/ws');
  assert.equal(tokenExpiry(jwt({ exp: 123 })), 123);
  assert.equal(tokenExpiry('garbage'), undefined);
});

test('no WebSocket: clear error', () => {
  if (globalThis.WebSocket) return;
  assert.throws(() => new Client('ws://x'), /pass \{ WebSocket \}/);
});

test('status: connecting, connected, disconnected with code, then reconnects', async () => {
  client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 2 } });
  const seen = [];
  client.on('status', (s, d) => seen.push([s, d.code]));
  await handshake(FakeWS.last, { c: 'c7', u: 'ann', n: 'n1' });
  assert.equal(client.conn, 'c7');
  assert.equal(client.user, 'ann');
  FakeWS.last.recv({ t: 'bye', code: 1, msg: 'shutdown' });
  assert.equal(FakeWS.all[0].closedWith, 1000);
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  assert.deepEqual(seen.slice(0, 3), [
    ['connected', undefined],
    ['disconnected', 1],
    ['connecting', undefined],
  ]);
});

for (const [how, act] of [
  ['bye 501', (ws) => ws.recv({ t: 'bye', code: 501, msg: 'bad token' })],
  ['close 4502', (ws) => ws.serverClose(4502, 'unsupported')],
  ['bye 503', (ws) => ws.recv({ t: 'bye', code: 503, msg: 'kicked' })],
]) {
  test(`terminal code (${how}) stops reconnecting`, async () => {
    client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 1 } });
    const room = client.room('chat:a');
    const joinP = room.join();
    const errs = [];
    const st = [];
    client.on('error', (e) => errs.push(e.code));
    client.on('status', (s, d) => st.push([s, d.code, d.terminal]));
    act(FakeWS.last);
    await assert.rejects(joinP, (e) => e.code >= 500);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(FakeWS.all.length, 1, 'no reconnect');
    assert.equal(client.status, 'disconnected');
    assert.equal(st.at(-1)[2], true);
    assert.ok(errs[0] >= 500);
    // user action reconnects and resumes the room
    client.connect();
    assert.equal(FakeWS.all.length, 2);
  });
}

for (const code of [1006, 1000, 4002, 4008]) {
  test(`close ${code} reconnects`, async () => {
    client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 2 } });
    await handshake(FakeWS.last);
    FakeWS.last.serverClose(code);
    await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  });
}

test('a failed connect attempt backs off and retries', async () => {
  client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 2 } });
  FakeWS.last.serverClose(1006); // never opened
  await waitFor(() => FakeWS.all.length === 2, 2000, 'retry');
  FakeWS.last.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 3, 2000, 'retry');
});

test('getToken is called on every connect and token_expired reconnects with a fresh one', async () => {
  let n = 0;
  client = new Client('ws://x', { WebSocket: FakeWS, getToken: async () => 'tok' + ++n, backoff: { base: 1000 } });
  await waitFor(() => FakeWS.all.length === 1, 2000, 'socket');
  await handshake(FakeWS.last);
  assert.equal(FakeWS.last.sent[0].tok, 'tok1');
  FakeWS.last.recv({ t: 'bye', code: 4, msg: 'token expired' });
  await waitFor(() => FakeWS.all.length === 2, 1000, 'prompt reconnect');
  await handshake(FakeWS.last);
  assert.equal(FakeWS.last.sent[0].tok, 'tok2');
  FakeWS.last.serverClose(4004);
  await waitFor(() => FakeWS.all.length === 3, 1000, 'prompt reconnect');
  await handshake(FakeWS.last);
  assert.equal(FakeWS.last.sent[0].tok, 'tok3');
});

test('a failing getToken is reported and retried', async () => {
  let n = 0;
  client = new Client('ws://x', {
    WebSocket: FakeWS,
    backoff: { base: 1, max: 2 },
    getToken: async () => {
      if (++n < 3) throw new Error('auth server down');
      return 'ok';
    },
  });
  const errs = [];
  client.on('error', (e) => errs.push(e.message));
  await waitFor(() => FakeWS.all.length === 1, 2000, 'socket');
  assert.deepEqual(errs, ['auth server down', 'auth server down']);
});

test('token refreshed in-connection before exp', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  let n = 0;
  const exp = [1_000 + 120, 1_000 + 240]; // unix s: 2 min, then 4 min after start
  client = new Client('ws://x', { WebSocket: FakeWS, getToken: async () => jwt({ exp: exp[n++] ?? 9e9 }) });
  await tick(); // timers are mocked: no waitFor here
  const ws = FakeWS.last;
  ws.open();
  await tick();
  ws.recv({ t: 'welcome', v: 1, c: 'c1', n: 'n', ping: 1000, exp: exp[0] });
  mock.timers.tick(89_000);
  await tick();
  assert.equal(ws.of('auth').length, 0, 'not yet');
  mock.timers.tick(1_000); // 30 s before exp
  await tick();
  await tick();
  const a = ws.of('auth');
  assert.equal(a.length, 1);
  assert.equal(tokenExpiry(a[0].tok), exp[1]);
  ws.recv({ t: 'ok', id: a[0].id });
  await tick();
  mock.timers.tick(120_000);
  await tick();
  await tick();
  assert.equal(ws.of('auth').length, 2, 'next refresh scheduled from the new token');
  assert.equal(FakeWS.all.length, 1, 'same connection');
});

test('silence longer than ping + 10 s drops the link', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 100, max: 100 }, random: () => 0.5 });
  const ws = FakeWS.last;
  ws.open();
  await tick();
  ws.recv({ t: 'welcome', v: 1, c: 'c1', n: 'n', ping: 5 });
  mock.timers.tick(14_000);
  ws.recv({ t: 'ping' });
  mock.timers.tick(14_000);
  assert.equal(client.status, 'connected', 'a ping keeps it alive');
  mock.timers.tick(1_001);
  assert.equal(client.status, 'disconnected');
  assert.equal(ws.closedWith, 1000);
  mock.timers.tick(50);
  assert.equal(FakeWS.all.length, 2);
});

test('no welcome in time: retried', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  client = new Client('ws://x', { WebSocket: FakeWS, connectTimeout: 500, backoff: { base: 1, max: 1 } });
  FakeWS.last.open();
  mock.timers.tick(501);
  mock.timers.tick(2);
  assert.equal(FakeWS.all.length, 2);
});

test('close(): no reconnect, pending requests fail', async () => {
  client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 1 } });
  await handshake(FakeWS.last);
  const room = client.room('chat:a');
  const p = room.join();
  client.close();
  await assert.rejects(p, (e) => e.code === -3);
  assert.equal(client.status, 'disconnected');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(FakeWS.all.length, 1);
});

test('offline pauses reconnects; online resumes at once', async () => {
  const listeners = {};
  const saved = { add: globalThis.addEventListener, rm: globalThis.removeEventListener, nav: Object.getOwnPropertyDescriptor(globalThis, 'navigator') };
  let online = true;
  globalThis.addEventListener = (t, fn) => (listeners[t] = fn);
  globalThis.removeEventListener = () => {};
  Object.defineProperty(globalThis, 'navigator', { value: { get onLine() { return online; } }, configurable: true });
  try {
    client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 1 } });
    await handshake(FakeWS.last);
    online = false;
    listeners.offline();
    assert.equal(client.status, 'disconnected');
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(FakeWS.all.length, 1, 'waits while offline');
    online = true;
    listeners.online();
    assert.equal(FakeWS.all.length, 2);
  } finally {
    globalThis.addEventListener = saved.add;
    globalThis.removeEventListener = saved.rm;
    if (saved.nav) Object.defineProperty(globalThis, 'navigator', saved.nav);
    else delete globalThis.navigator;
  }
});

test('token_expired without getToken is terminal (the same token would fail again)', async () => {
  client = new Client('ws://x', { WebSocket: FakeWS, token: 'static', backoff: { base: 1, max: 1 } });
  const st = [];
  client.on('status', (s, d) => st.push([s, d.code, d.terminal]));
  client.on('error', () => {});
  await handshake(FakeWS.last);
  FakeWS.last.recv({ t: 'bye', code: 4, msg: 'token expired' });
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(FakeWS.all.length, 1);
  assert.deepEqual(st.at(-1), ['disconnected', 4, true]);
});

test('token_expired at hello (a stale token from getToken) backs off instead of hammering', async () => {
  client = new Client('ws://x', { WebSocket: FakeWS, getToken: () => 'stale', backoff: { base: 10000 }, random: () => 0.5 });
  const st = [];
  client.on('status', (s, d) => st.push([s, d.code, d.retryIn]));
  await waitFor(() => FakeWS.all.length === 1, 2000, 'socket');
  FakeWS.last.open();
  await tick();
  FakeWS.last.recv({ t: 'bye', code: 4, msg: 'token expired' });
  assert.deepEqual(st.at(-1), ['disconnected', 4, 5000]);
});
