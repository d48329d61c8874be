// The SDK against a real roomd over WebSocket (dev mode).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client } from '../../dist/index.js';
import { startProxy, startRoomd, waitFor } from '../harness.mjs';

const T = { timeout: 30_000 };
let srv;
const clients = [];
const proxies = [];
let n = 0;
const uniq = (p = 'chat:t') => `${p}${Date.now().toString(36)}${n++}`;

function client(url = srv.ws, opts = {}) {
  const c = new Client(url, { WebSocket, backoff: { base: 20, max: 200 }, ...opts });
  clients.push(c);
  return c;
}
async function proxy() {
  const p = await startProxy(srv.addr);
  proxies.push(p);
  return p;
}
async function joined(c, name, opts) {
  const r = c.room(name, opts);
  await r.join();
  return r;
}
function collect(room, ev = 'message') {
  const out = [];
  room.on(ev, (x) => out.push(x));
  return out;
}

before(async () => {
  srv = await startRoomd(['--presence-grace', '1s', '--history-size', '1000']);
});
after(async () => {
  for (const c of clients) c.close();
  for (const p of proxies) await p.close();
  await srv?.stop();
});

describe('websocket', () => {
  test('welcome: connected with a connection id', T, async () => {
    const c = client();
    await waitFor(() => c.status === 'connected', 5000, 'connected');
    assert.ok(c.conn);
    assert.ok(c.node);
  });

  test('publish is acknowledged with the seq; everyone sees the same order', T, async () => {
    const name = uniq();
    const ca = client();
    const a = await joined(ca, name);
    const b = await joined(client(), name);
    const gotA = collect(a);
    const gotB = collect(b);
    const N = 50;
    const seqs = await Promise.all(Array.from({ length: N }, (_, i) => a.publish({ i })));
    assert.deepEqual(seqs, Array.from({ length: N }, (_, i) => i + 1), 'acks carry seqs 1..N in publish order');
    await waitFor(() => gotB.length === N && gotA.length === N, 5000, 'all messages');
    assert.deepEqual(gotB.map((m) => m.seq), seqs);
    assert.deepEqual(gotB.map((m) => m.data.i), [...Array(N).keys()]);
    assert.deepEqual(gotA.map((m) => m.seq), seqs);
    const m = gotB[0];
    assert.equal(m.conn, ca.conn);
    assert.equal(typeof m.ts, 'number');
  });

  test('publishes from two clients interleave into one order', T, async () => {
    const name = uniq();
    const a = await joined(client(), name);
    const b = await joined(client(), name);
    const gotA = collect(a);
    const gotB = collect(b);
    await Promise.all([...Array(20)].flatMap((_, i) => [a.publish('a' + i), b.publish('b' + i)]));
    await waitFor(() => gotA.length === 40 && gotB.length === 40, 5000, 'all messages');
    assert.deepEqual(gotA.map((m) => [m.seq, m.data]), gotB.map((m) => [m.seq, m.data]));
  });

  test('history on join (h)', T, async () => {
    const name = uniq();
    const a = await joined(client(), name);
    for (let i = 0; i < 5; i++) await a.publish(i);
    const late = client().room(name, { history: 3 });
    const got = collect(late);
    await late.join();
    assert.deepEqual(got.map((m) => m.data), [2, 3, 4]);
  });

  test('presence: join, update, leave', T, async () => {
    const name = uniq();
    const ca = client();
    const a = await joined(ca, name, { presence: { name: 'ann' } });
    assert.deepEqual([...a.presence.values()].map((m) => m.data), [{ name: 'ann' }]);
    const cb = client();
    const b = await joined(cb, name, { presence: { name: 'bob' } });
    await waitFor(() => a.presence.get(cb.conn)?.data?.name === 'bob', 5000, 'bob visible to ann');
    assert.equal(b.presence.get(ca.conn)?.data?.name, 'ann');
    await b.updatePresence({ name: 'bob', typing: true });
    await waitFor(() => a.presence.get(cb.conn)?.data?.typing === true, 5000, 'update');
    await b.leave();
    await waitFor(() => !a.presence.has(cb.conn), 5000, 'leave');
  });

  test('presence: a closed client leaves after the grace', T, async () => {
    const name = uniq();
    const a = await joined(client(), name);
    const cb = client();
    await joined(cb, name);
    await waitFor(() => a.presence.has(cb.conn), 5000, 'b present');
    cb.close();
    await waitFor(() => !a.presence.has(cb.conn), 8000, 'b gone');
  });

  test('state: set, delete, snapshot for a late joiner', T, async () => {
    const name = uniq('board:t');
    const a = await joined(client(), name);
    const b = await joined(client(), name);
    const changes = collect(b, 'state');
    const s1 = await a.set('k1', { x: 1 });
    const s2 = await a.set('k2', [1, 2, 3]);
    const s3 = await a.delete('k1');
    assert.ok(s1 < s2 && s2 < s3);
    await waitFor(() => changes.length === 3, 5000, 'state events');
    assert.deepEqual(changes.map((c) => [c.key, c.deleted, c.seq]), [['k1', false, s1], ['k2', false, s2], ['k1', true, s3]]);
    assert.deepEqual(Object.fromEntries(b.state), { k2: [1, 2, 3] });
    const late = await joined(client(), name);
    assert.deepEqual(Object.fromEntries(late.state), { k2: [1, 2, 3] });
    assert.equal(late.seq, s3);
  });

  test('ephemeral broadcast reaches members, is coalesced and not logged', T, async () => {
    const name = uniq();
    const ca = client();
    const a = await joined(ca, name);
    const b = await joined(client(), name);
    const eph = collect(b, 'ephemeral');
    for (let i = 0; i < 100; i++) a.broadcast({ x: i });
    await waitFor(() => eph.some((e) => e.data.x === 99), 5000, 'last cursor');
    assert.ok(eph.length < 10, `coalesced: ${eph.length} frames for 100 calls`);
    assert.equal(eph.at(-1).conn, ca.conn);
    assert.equal(b.seq, 0, 'nothing logged');
  });

  test('exactly once: publishes resent after a dropped link are not duplicated', T, async () => {
    const name = uniq();
    const p = await proxy();
    const ca = client(p.ws);
    const a = await joined(ca, name);
    const b = await joined(client(), name);
    const gotB = collect(b);
    const gotA = collect(a);
    await a.publish('warm-up');
    await waitFor(() => gotB.length === 1, 5000, 'warm-up');
    // Replies stop reaching A: the server logs the publishes but A never sees the acks.
    p.blackhole(true);
    const pubs = Array.from({ length: 10 }, (_, i) => a.publish({ i }, { timeout: 20_000 }));
    await waitFor(() => gotB.length === 11, 5000, 'server logged all 10');
    const before = p.connections;
    p.blackhole(false);
    p.drop();
    const seqs = await Promise.all(pubs); // resent with the same keys after reconnect
    assert.ok(p.connections > before, 'reconnected');
    assert.deepEqual(seqs, gotB.slice(1).map((m) => m.seq), 'acks carry the original seqs');
    // let any duplicate show up: publish a marker and wait for it
    await a.publish('marker');
    await waitFor(() => gotB.at(-1)?.data === 'marker', 5000, 'marker');
    assert.equal(gotB.length, 12, 'no duplicates');
    assert.deepEqual(gotB.slice(1, 11).map((m) => m.data.i), [...Array(10).keys()]);
    await waitFor(() => gotA.at(-1)?.data === 'marker', 5000, 'A caught up');
    assert.deepEqual(gotA.map((m) => m.seq), gotB.map((m) => m.seq), 'A saw each event once');
  });

  test('resume: no missing or duplicated event across a reconnect', T, async () => {
    const name = uniq();
    const p = await proxy();
    const a = await joined(client(), name);
    const cb = client(p.ws);
    const b = await joined(cb, name);
    const gotB = collect(b);
    const resets = collect(b, 'reset');
    const statuses = [];
    cb.on('status', (s, d) => statuses.push(s + (d.code !== undefined ? ':' + d.code : '')));
    let i = 0;
    for (; i < 10; i++) await a.publish(i);
    await waitFor(() => gotB.length === 10, 5000, 'first 10');
    p.blackhole(true); // b stops hearing
    for (; i < 30; i++) await a.publish(i);
    p.drop();
    await waitFor(() => statuses.some((s) => s.startsWith('disconnected')), 5000, 'b dropped');
    for (; i < 40; i++) await a.publish(i); // some while b reconnects
    p.blackhole(false);
    await waitFor(() => gotB.length >= 40, 10_000, 'b caught up').catch((e) => {
      throw new Error(`${e.message}; b: ${b.status} seq ${b.seq}, got ${gotB.length}, statuses ${statuses}, proxy conns ${p.connections}/${p.open}`);
    });
    await a.publish('end');
    await waitFor(() => gotB.at(-1)?.data === 'end', 5000, 'end');
    assert.deepEqual(gotB.map((m) => m.seq), Array.from({ length: 41 }, (_, k) => k + 1));
    assert.deepEqual(resets, []);
  });

  test('presence survives a short reconnect (connection id reused)', T, async () => {
    const name = uniq();
    const p = await proxy();
    const a = await joined(client(), name);
    const cb = client(p.ws);
    await joined(cb, name, { presence: { name: 'bob' } });
    const id = cb.conn;
    await waitFor(() => a.presence.has(id), 5000, 'b present');
    const pres = collect(a, 'presence');
    p.drop();
    await waitFor(() => cb.status === 'connected' && cb.room(name).status === 'joined' && cb.conn !== undefined, 5000, 'b back');
    assert.equal(cb.conn, id, 'same connection id after reconnect');
    assert.ok(a.presence.has(id));
    assert.deepEqual(pres.flatMap((x) => x.leave.map((m) => m.conn)), [], 'no leave shown to others');
  });

  test('errors: forbidden / invalid operations reject with the wire code', T, async () => {
    const c = client();
    const r = await joined(c, uniq());
    await assert.rejects(r.set('x'.repeat(300), 1), (e) => e.code === 103);
    await assert.rejects(r.publish(new Uint8Array(70 * 1024)), (e) => e.code === 103);
    assert.equal(r.status, 'joined');
  });
});

describe('reset', () => {
  let small;
  before(async () => {
    small = await startRoomd(['--history-size', '5']);
  });
  after(async () => small?.stop());

  test('a resume past the history surfaces reset with a fresh state snapshot', T, async () => {
    const name = uniq();
    const p = await startProxy(small.addr);
    proxies.push(p);
    const a = await joined(client(small.ws), name);
    const b = await joined(client(p.ws), name);
    const resets = collect(b, 'reset');
    const gotB = collect(b);
    await a.publish(0);
    await a.set('k', 'v1');
    await waitFor(() => b.seq === 2, 5000, 'b at seq 2');
    p.blackhole(true);
    for (let i = 1; i <= 20; i++) await a.publish(i);
    await a.set('k', 'v2');
    p.drop();
    p.blackhole(false);
    await waitFor(() => resets.length === 1, 10_000, 'reset');
    assert.equal(resets[0].seq, 23);
    await waitFor(() => b.status === 'joined', 5000, 'rejoined');
    assert.equal(b.seq, 23);
    assert.equal(b.state.get('k'), 'v2');
    const seqs = gotB.map((m) => m.seq);
    assert.equal(new Set(seqs).size, seqs.length, 'no duplicates');
  });
});
