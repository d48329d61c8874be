// observe(): SSE against a real roomd (dev mode).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, observe } from '../../dist/index.js';
import { NodeEventSource, startRoomd, waitFor } from '../harness.mjs';

const T = { timeout: 30_000 };
let srv;
const closers = [];
let n = 0;
const uniq = () => `chat:sse${Date.now().toString(36)}${n++}`;

function client() {
  const c = new Client(srv.ws, { WebSocket, backoff: { base: 20, max: 200 } });
  closers.push(() => c.close());
  return c;
}
function watch(room, opts = {}) {
  const events = [];
  const o = observe(srv.http, room, { EventSource: NodeEventSource, onEvent: (e) => events.push(e), ...opts });
  closers.push(() => o.close());
  return { o, events, of: (t) => events.filter((e) => e.type === t) };
}

before(async () => {
  srv = await startRoomd(['--presence-grace', '500ms']);
});
after(async () => {
  for (const c of closers) c();
  await srv?.stop();
});

describe('sse', () => {
  test('headers', T, async () => {
    const ac = new AbortController();
    const r = await fetch(`${srv.http}/v1/rooms/${uniq()}/events`, { signal: ac.signal });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    const reader = r.body.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /^retry: 3000/);
    ac.abort();
  });

  test('snapshot, then messages, state and presence, typed', T, async () => {
    const name = uniq();
    const ca = client();
    const a = ca.room(name, { presence: { name: 'ann' } });
    await a.join();
    await a.publish({ text: 'one' });
    await a.publish({ text: 'two' });
    await a.set('k', { v: 1 });
    const w = watch(name, { h: 1 });
    await waitFor(() => w.of('snapshot').length === 1, 5000, 'snapshot');
    const snap = w.of('snapshot')[0];
    assert.equal(snap.room, name);
    assert.equal(snap.seq, 3);
    assert.equal(typeof snap.epoch, 'string');
    assert.deepEqual(snap.presence.map((m) => [m.conn, m.data]), [[ca.conn, { name: 'ann' }]]);
    assert.deepEqual(snap.state, { k: { v: 1 } });
    assert.deepEqual(snap.log.map((e) => [e.type, e.seq, e.data]), [['message', 2, { text: 'two' }]]);

    const cb = client();
    const b = cb.room(name, { presence: { name: 'bob' } });
    await b.join();
    await b.publish({ text: 'three' });
    await b.delete('k');
    // presence goes out per window: a member that joins and leaves within
    // one is never shown, so b stays until its join was
    // (a window's event may also restate ann, whom the snapshot showed)
    const bJoin = () => w.of('presence').find((p) => p.join.some((m) => m.conn === cb.conn));
    await waitFor(bJoin, 5000, 'join');
    assert.deepEqual(bJoin().join.filter((m) => m.conn === cb.conn).map((m) => m.data), [{ name: 'bob' }]);
    await b.leave();
    await waitFor(() => w.of('presence').some((p) => p.leave.includes(cb.conn)), 5000, 'leave');
    const msg = w.of('message')[0];
    assert.deepEqual([msg.seq, msg.conn, msg.data], [4, cb.conn, { text: 'three' }]);
    assert.equal(typeof msg.ts, 'number');
    const st = w.of('state')[0];
    assert.deepEqual([st.seq, st.key, st.deleted], [5, 'k', true]);
    assert.equal(w.o.lastEventId, `${snap.epoch}:5`);
  });

  test('ephemeral only when asked', T, async () => {
    const name = uniq();
    const a = client().room(name);
    await a.join();
    const plain = watch(name);
    const eph = watch(name, { ephemeral: true });
    await waitFor(() => plain.of('snapshot').length && eph.of('snapshot').length, 5000, 'snapshots');
    a.broadcast({ x: 1 });
    await waitFor(() => eph.of('ephemeral').length === 1, 5000, 'ephemeral');
    assert.deepEqual(eph.of('ephemeral')[0].data, { x: 1 });
    await a.publish('marker');
    await waitFor(() => plain.of('message').length === 1, 5000, 'marker');
    assert.equal(plain.of('ephemeral').length, 0);
  });

  test('resume with since: missed events replayed, no snapshot', T, async () => {
    const name = uniq();
    const a = client().room(name);
    await a.join();
    await a.publish(1);
    const w1 = watch(name);
    await waitFor(() => w1.of('snapshot').length, 5000, 'snapshot');
    await a.publish(2);
    await waitFor(() => w1.of('message').length === 1, 5000, 'message 2');
    const since = w1.o.lastEventId;
    w1.o.close();
    await a.publish(3);
    await a.publish(4);
    const w2 = watch(name, { since });
    await waitFor(() => w2.of('message').length === 2, 5000, 'replay');
    assert.deepEqual(w2.of('message').map((m) => m.data), [3, 4]);
    assert.equal(w2.of('snapshot').length, 0);
  });
});
