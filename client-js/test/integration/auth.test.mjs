// Tokens against a real roomd started with --jwt-secret: refresh before
// expiry, token_expired, terminal codes, permissions.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, observe } from '../../dist/index.js';
import { NodeEventSource, mintToken, startRoomd, waitFor } from '../harness.mjs';

const SECRET = 'integration-secret';
const T = { timeout: 30_000 };
const PERMS = { 'chat:*': ['join', 'pub', 'pres', 'state', 'observe'] };
let srv;
const clients = [];
let n = 0;
const uniq = () => `chat:auth${Date.now().toString(36)}${n++}`;
const now = () => Math.floor(Date.now() / 1000);
const token = (sub, ttl = 60, secret = SECRET, rooms = PERMS) => mintToken(secret, { sub, exp: now() + ttl, rooms });

function client(opts) {
  const c = new Client(srv.ws, { WebSocket, backoff: { base: 20, max: 200 }, ...opts });
  clients.push(c);
  return c;
}
function track(c) {
  const t = { statuses: [], errors: [] };
  c.on('status', (s, d) => t.statuses.push([s, d.code, d.terminal]));
  c.on('error', (e) => t.errors.push(e.code ?? e.message));
  return t;
}

before(async () => {
  srv = await startRoomd(['--jwt-secret', SECRET]);
});
after(async () => {
  for (const c of clients) c.close();
  await srv?.stop();
});

describe('tokens', () => {
  test('the user id comes from sub; presence shows it', T, async () => {
    const c = client({ getToken: () => token('ann') });
    const r = c.room(uniq());
    await r.join();
    assert.equal(c.user, 'ann');
    assert.equal(r.presence.get(c.conn)?.user, 'ann');
  });

  test('refreshed in-connection before exp; the link never drops', T, async () => {
    let calls = 0;
    const c = client({ getToken: () => (calls++, token('bob', 3)) });
    const t = track(c);
    const r = c.room(uniq());
    await r.join();
    await waitFor(() => calls >= 4, 15_000, 'three refreshes');
    assert.deepEqual(t.statuses.filter(([s]) => s === 'disconnected'), [], 'never disconnected');
    assert.deepEqual(t.errors, []);
    assert.equal(typeof (await r.publish('still here')), 'number');
  });

  test('a refused refresh: token_expired at exp, then a reconnect with a fresh token', T, async () => {
    let calls = 0;
    // 1: valid for 2 s; 2 (the refresh): wrong secret, refused; 3+: valid
    const c = client({ getToken: () => (++calls === 2 ? token('cid', 60, 'wrong') : token('cid', calls === 1 ? 2 : 60)) });
    const t = track(c);
    const name = uniq();
    const r = c.room(name);
    await r.join();
    await r.publish('before');
    await waitFor(() => t.statuses.some(([s, code]) => s === 'disconnected' && code === 4), 10_000, 'token_expired');
    assert.ok(t.errors.includes(501), 'refresh refused with 501: ' + t.errors);
    await waitFor(() => c.status === 'connected' && r.status === 'joined', 10_000, 'back');
    assert.ok(calls >= 3);
    assert.equal(typeof (await r.publish('after')), 'number');
  });

  test('a token signed with the wrong secret is terminal: bye 501, no reconnect', T, async () => {
    let calls = 0;
    const c = client({ lazy: true, getToken: () => (calls++, token('eve', 60, 'wrong')) });
    const t = track(c);
    c.connect();
    const r = c.room(uniq());
    await assert.rejects(r.join(), (e) => e.code === 501);
    await waitFor(() => t.statuses.some(([s, , term]) => s === 'disconnected' && term), 5000, 'terminal');
    assert.equal(c.status, 'disconnected');
    // Negative check: with backoff capped at 200 ms, a reconnect would have
    // happened well within this window.
    await new Promise((res) => setTimeout(res, 600));
    assert.equal(calls, 1, 'getToken not called again');
    assert.equal(t.statuses.filter(([s]) => s === 'connecting').length, 1);
  });

  test('no token at all: terminal 501', T, async () => {
    const c = client({});
    const t = track(c);
    await waitFor(() => t.statuses.some(([s, code, term]) => s === 'disconnected' && code === 501 && term), 5000, 'bye 501');
  });

  test('a room outside the grants is forbidden (107)', T, async () => {
    const c = client({ getToken: () => token('fay') });
    await assert.rejects(c.room('board:nope').join(), (e) => e.code === 107);
    await c.room(uniq()).join();
    assert.equal(c.status, 'connected');
  });

  test('observe with ?token= (observe permission)', T, async () => {
    const name = uniq();
    const c = client({ getToken: () => token('gus') });
    const r = c.room(name);
    await r.join();
    const events = [];
    const o = observe(srv.http, name, { token: token('spectator'), EventSource: NodeEventSource, onEvent: (e) => events.push(e) });
    try {
      await waitFor(() => events.some((e) => e.type === 'snapshot'), 5000, 'snapshot');
      await r.publish({ hi: 1 });
      await waitFor(() => events.some((e) => e.type === 'message' && e.data.hi === 1), 5000, 'message');
      const m = events.find((e) => e.type === 'message');
      assert.equal(m.user, 'gus');
    } finally {
      o.close();
    }
  });

  test('observe: the stream ends at its token\'s expiry and resumes with getToken\'s fresh one', T, async () => {
    const name = uniq();
    const c = client({ getToken: () => token('gus') });
    const r = c.room(name);
    await r.join();
    const events = [];
    const statuses = [];
    const o = observe(srv.http, name, {
      token: token('spectator', 1), // + the server's 5 s leeway
      getToken: () => token('spectator'),
      EventSource: NodeEventSource,
      onEvent: (e) => events.push(e),
      onStatus: (s) => statuses.push(s),
    });
    try {
      await waitFor(() => events.some((e) => e.type === 'snapshot'), 5000, 'snapshot');
      await r.publish({ n: 1 });
      await waitFor(() => events.some((e) => e.type === 'bye' && e.code === 4), 15000, 'bye token_expired');
      await r.publish({ n: 2 });
      await waitFor(() => events.some((e) => e.type === 'message' && e.data.n === 2), 5000, 'message after the renewal');
      const msgs = events.filter((e) => e.type === 'message').map((e) => e.data.n);
      assert.deepEqual(msgs, [1, 2], 'resumed where it stopped: no gap, no duplicate');
      assert.equal(events.filter((e) => e.type === 'snapshot').length, 1);
      assert.ok(statuses.includes('reconnecting'));
    } finally {
      o.close();
    }
  });

  test('observe without a token is refused', T, async () => {
    const r = await fetch(`${srv.http}/v1/rooms/chat:x/events`);
    await r.body?.cancel();
    assert.equal(r.status, 401);
  });
});
