import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';
import { Client, RoomdError } from '../../dist/index.js';
import { FakeWS, answerJoin, handshake, tick, waitFor } from './fake.mjs';

let client;
beforeEach(() => FakeWS.reset());
afterEach(() => client?.close());

async function joined(name = 'chat:a', extra = {}, opts = {}) {
  client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 2 }, ...opts });
  const room = client.room(name);
  const p = room.join();
  await handshake(FakeWS.last);
  await answerJoin(FakeWS.last, name, extra);
  await p;
  return room;
}

const msg = (s, d = s, extra = {}) => ({ t: 'msg', r: 'chat:a', s, u: 'u', c: 'c9', d, ts: 1000 + s, ...extra });

test('messages are delivered once per seq', async () => {
  const room = await joined();
  const got = [];
  room.on('message', (m) => got.push(m));
  const ws = FakeWS.last;
  ws.recv(msg(1), msg(2), msg(2), msg(1), msg(3));
  assert.deepEqual(got.map((m) => m.seq), [1, 2, 3]);
  assert.deepEqual(got[0], { seq: 1, user: 'u', conn: 'c9', data: 1, ts: 1001 });
  assert.equal(room.seq, 3);
});

test('resume after reconnect: since {e,s}, overlapping log deduped', async () => {
  const room = await joined('chat:a', { e: 'E1' });
  const got = [];
  room.on('message', (m) => got.push(m.seq));
  FakeWS.last.recv(msg(1), msg(2));
  FakeWS.last.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  const ws = FakeWS.last;
  await handshake(ws, { c: 'c2' });
  const j = await answerJoin(ws, 'chat:a', { e: 'E1', s: 4, reset: false, log: [msg(2), msg(3), msg(4)] });
  assert.deepEqual(j.since, { e: 'E1', s: 2 });
  ws.recv(msg(4), msg(5));
  assert.deepEqual(got, [1, 2, 3, 4, 5]);
  assert.equal(room.status, 'joined');
});

test('publish resolves with the seq from ok', async () => {
  const room = await joined();
  const p = room.publish({ text: 'hi' });
  await tick();
  const pub = FakeWS.last.of('pub')[0];
  assert.equal(typeof pub.key, 'string');
  assert.ok(pub.key.length > 0 && pub.key.length <= 64);
  assert.deepEqual(pub.d, { text: 'hi' });
  assert.equal(pub.eph, undefined);
  FakeWS.last.recv({ t: 'ok', id: pub.id, s: 7 });
  assert.equal(await p, 7);
});

test('publish is resent with the same key after a reconnect, once', async () => {
  const room = await joined('chat:a', { e: 'E1' });
  const p = room.publish('x');
  const q = room.publish('y');
  await tick();
  const first = FakeWS.last.of('pub');
  assert.equal(first.length, 2);
  FakeWS.last.serverClose(1006); // acks lost
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  const ws = FakeWS.last;
  await handshake(ws, { c: 'c1' });
  assert.equal(ws.of('pub').length, 0, 'no pub before joined');
  await answerJoin(ws, 'chat:a', { e: 'E1', s: 0, reset: false });
  await tick();
  const again = ws.of('pub');
  assert.deepEqual(again.map((f) => f.key), first.map((f) => f.key));
  assert.deepEqual(again.map((f) => f.d), ['x', 'y']);
  ws.recv({ t: 'ok', id: again[0].id, s: 1 }, { t: 'ok', id: again[1].id, s: 2 });
  assert.deepEqual(await Promise.all([p, q]), [1, 2]);
  // a later rejoin does not send them again
  ws.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 3, 2000, 'reconnect');
  await handshake(FakeWS.last);
  await answerJoin(FakeWS.last, 'chat:a', { e: 'E1', s: 2, reset: false });
  await tick();
  assert.equal(FakeWS.last.of('pub').length, 0);
});

test('publish: transient err is retried with the same key, fatal err rejects', async () => {
  const room = await joined();
  const p = room.publish('x');
  await tick();
  const ws = FakeWS.last;
  const a = ws.of('pub')[0];
  ws.recv({ t: 'err', id: a.id, r: 'chat:a', code: 5, msg: 'rate limited' });
  await waitFor(() => ws.of('pub').length === 2, 2000, 'retry');
  const b = ws.of('pub')[1];
  assert.equal(b.key, a.key);
  ws.recv({ t: 'ok', id: b.id, s: 3 });
  assert.equal(await p, 3);

  const q = room.publish('y');
  await tick();
  const c = ws.of('pub')[2];
  ws.recv({ t: 'err', id: c.id, r: 'chat:a', code: 107, msg: 'forbidden' });
  await assert.rejects(q, (e) => e instanceof RoomdError && e.code === 107 && e.room === 'chat:a');
});

test('publish: overloaded rejects at once with retryIn, never resent; retryIn grows and resets on ok', async () => {
  const room = await joined();
  const ws = FakeWS.last;
  const refuse = async () => {
    const p = room.publish('x');
    await tick();
    const pubs = ws.of('pub');
    ws.recv({ t: 'err', id: pubs[pubs.length - 1].id, r: 'chat:a', code: 7, msg: 'node overloaded: this room is over its share; retry later' });
    return assert.rejects(p, (e) => {
      assert.ok(e instanceof RoomdError);
      assert.equal(e.code, 7);
      assert.equal(e.room, 'chat:a');
      assert.equal(e.retryable, true);
      assert.match(e.message, /^overloaded: node overloaded/);
      assert.equal(typeof e.retryIn, 'number');
      assert.ok(e.retryIn >= 0);
      return true;
    });
  };
  await refuse();
  await new Promise((r) => setTimeout(r, 30)); // longer than any retry backoff here
  assert.equal(ws.of('pub').length, 1, 'a refused publish is not resent');
  // The suggested wait grows with refusals in a row (full jitter under a cap that doubles).
  client._o.random = () => 0.999;
  client._o.backoff = { base: 100, max: 100000 };
  const waits = [];
  for (let i = 0; i < 3; i++) {
    const p = room.publish('y');
    await tick();
    const pubs = ws.of('pub');
    ws.recv({ t: 'err', id: pubs[pubs.length - 1].id, r: 'chat:a', code: 7, msg: 'x' });
    await p.catch((e) => waits.push(e.retryIn));
  }
  assert.ok(waits[0] < waits[1] && waits[1] < waits[2], `waits ${waits}`);
  const ok = room.publish('z');
  await tick();
  const pubs = ws.of('pub');
  ws.recv({ t: 'ok', id: pubs[pubs.length - 1].id, s: 9 });
  assert.equal(await ok, 9);
  const after = room.publish('w');
  await tick();
  const last = ws.of('pub');
  ws.recv({ t: 'err', id: last[last.length - 1].id, r: 'chat:a', code: 7, msg: 'x' });
  await assert.rejects(after, (e) => e.retryIn < waits[1]);
});

test('publish times out', async () => {
  const room = await joined();
  await assert.rejects(room.publish('x', { timeout: 20 }), (e) => e.code === -2);
});

test('publish before join is refused', async () => {
  FakeWS.reset();
  client = new Client('ws://x', { WebSocket: FakeWS, lazy: true });
  await assert.rejects(client.room('chat:z').publish(1), (e) => e.code === 104);
});

test('broadcast coalesces to the latest value per frame, per channel', async () => {
  const room = await joined();
  const ws = FakeWS.last;
  for (let i = 0; i < 10; i++) room.broadcast({ x: i });
  room.broadcast('typing', 'typing');
  await waitFor(() => ws.of('pub').length >= 2, 1000, 'eph');
  await new Promise((r) => setTimeout(r, 40));
  const eph = ws.of('pub');
  assert.deepEqual(eph.map((f) => f.d), [{ x: 9 }, 'typing']);
  assert.ok(eph.every((f) => f.eph === true && f.id === undefined && f.key === undefined));
});

test('ephemeral frames are emitted, not logged', async () => {
  const room = await joined();
  const got = [];
  room.on('ephemeral', (e) => got.push(e));
  FakeWS.last.recv({ t: 'eph', r: 'chat:a', u: 'bob', c: 'c7', d: { x: 1 } });
  assert.deepEqual(got, [{ user: 'bob', conn: 'c7', data: { x: 1 } }]);
  assert.equal(room.seq, 0);
});

test('presence and state maps from snapshot and deltas', async () => {
  const room = await joined('chat:a', {
    s: 5,
    pres: [{ c: 'c1', u: 'me', d: { n: 1 } }, { c: 'c2', u: 'bob', d: null, i: { role: 'x' } }],
    st: { a: 1, b: 2 },
  });
  assert.deepEqual([...room.presence.keys()], ['c1', 'c2']);
  assert.deepEqual(room.presence.get('c2'), { conn: 'c2', user: 'bob', data: null, info: { role: 'x' } });
  assert.deepEqual(Object.fromEntries(room.state), { a: 1, b: 2 });
  assert.equal(room.seq, 5);

  const pres = [];
  const st = [];
  room.on('presence', (p) => pres.push(p));
  room.on('state', (s) => st.push(s));
  const ws = FakeWS.last;
  ws.recv(
    { t: 'pres', r: 'chat:a', join: [{ c: 'c3', u: 'cid' }] },
    { t: 'pres', r: 'chat:a', upd: [{ c: 'c2', u: 'bob', d: { typing: true } }] },
    { t: 'pres', r: 'chat:a', leave: ['c1'] },
    { t: 'state', r: 'chat:a', s: 6, k: 'c', d: 3, u: 'bob', ts: 9 },
    { t: 'state', r: 'chat:a', s: 7, k: 'a', u: 'bob', ts: 10 },
    { t: 'state', r: 'chat:a', s: 7, k: 'a', d: 'dup', ts: 10 },
  );
  assert.deepEqual([...room.presence.keys()], ['c2', 'c3']);
  assert.deepEqual(room.presence.get('c2').data, { typing: true });
  assert.equal(pres.length, 3);
  assert.equal(pres[2].leave[0].user, 'me');
  assert.deepEqual(Object.fromEntries(room.state), { b: 2, c: 3 });
  assert.deepEqual(st.map((s) => [s.key, s.value, s.deleted, s.seq]), [
    ['c', 3, false, 6],
    ['a', undefined, true, 7],
  ]);
});

test('set and delete send set frames and resolve with seq', async () => {
  const room = await joined();
  const p = room.set('k', { v: 1 });
  const q = room.delete('k');
  await tick();
  const [a, b] = FakeWS.last.of('set');
  assert.deepEqual([a.k, a.d], ['k', { v: 1 }]);
  assert.equal(b.k, 'k');
  assert.equal('d' in b, false);
  FakeWS.last.recv({ t: 'ok', id: a.id, s: 1 }, { t: 'ok', id: b.id, s: 2 });
  assert.deepEqual(await Promise.all([p, q]), [1, 2]);
});

test('updatePresence sends pres and is carried by the next join', async () => {
  const room = await joined();
  const p = room.updatePresence({ typing: true });
  await tick();
  const f = FakeWS.last.of('pres')[0];
  assert.deepEqual(f.d, { typing: true });
  FakeWS.last.recv({ t: 'ok', id: f.id });
  await p;
  FakeWS.last.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  await handshake(FakeWS.last);
  const j = await answerJoin(FakeWS.last, 'chat:a');
  assert.deepEqual(j.p, { typing: true });
});

test('rejoin: presence difference is reported, others kept through the reconnect', async () => {
  const room = await joined('chat:a', { pres: [{ c: 'c1', u: 'me' }, { c: 'c2', u: 'bob' }, { c: 'c3', u: 'cid' }] });
  const pres = [];
  room.on('presence', (p) => pres.push(p));
  FakeWS.last.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  assert.equal(room.presence.size, 3, 'presence kept while reconnecting');
  const ws = FakeWS.last;
  await handshake(ws);
  assert.equal(ws.sent[0].c, 'c1', 'hello carries the previous connection id');
  await answerJoin(ws, 'chat:a', {
    s: 0,
    reset: false,
    pres: [{ c: 'c1', u: 'me' }, { c: 'c2', u: 'bob', d: 1 }, { c: 'c4', u: 'dan' }],
  });
  assert.equal(pres.length, 1);
  assert.deepEqual(pres[0].join.map((m) => m.conn), ['c4']);
  assert.deepEqual(pres[0].update.map((m) => m.conn), ['c2']);
  assert.deepEqual(pres[0].leave.map((m) => m.conn), ['c3']);
});

test('reset: new epoch replaces state and is surfaced once', async () => {
  const room = await joined('chat:a', { e: 'E1', s: 3, st: { old: 1 } });
  const resets = [];
  const msgs = [];
  const st = [];
  room.on('reset', (r) => resets.push(r));
  room.on('message', (m) => msgs.push(m.seq));
  room.on('state', (s) => st.push(s));
  FakeWS.last.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  await handshake(FakeWS.last);
  const j = await answerJoin(FakeWS.last, 'chat:a', {
    e: 'E2',
    s: 2,
    reset: true,
    st: { fresh: 2 },
    log: [msg(1), msg(2)],
  });
  assert.deepEqual(j.since, { e: 'E1', s: 3 });
  assert.deepEqual(resets, [{ epoch: 'E2', previousEpoch: 'E1', seq: 2 }]);
  assert.deepEqual(Object.fromEntries(room.state), { fresh: 2 });
  assert.deepEqual(st, [{ snapshot: true, seq: 2 }]);
  assert.deepEqual(msgs, [1, 2], 'new epoch: seqs start over');
  assert.equal(room.epoch, 'E2');
});

test('first join is not a reset; its log (history) is delivered', async () => {
  FakeWS.reset();
  client = new Client('ws://x', { WebSocket: FakeWS });
  const room = client.room('chat:a', { history: 2 });
  const resets = [];
  const msgs = [];
  room.on('reset', (r) => resets.push(r));
  room.on('message', (m) => msgs.push(m.seq));
  const p = room.join();
  await handshake(FakeWS.last);
  await answerJoin(FakeWS.last, 'chat:a', { s: 9, log: [msg(8), msg(9)] });
  await p;
  assert.deepEqual(resets, []);
  assert.deepEqual(msgs, [8, 9]);
});

test('join error >= 100 rejects and stops; < 100 is retried', async () => {
  FakeWS.reset();
  client = new Client('ws://x', { WebSocket: FakeWS, backoff: { base: 1, max: 2 } });
  const a = client.room('chat:a');
  const b = client.room('chat:b');
  const pa = a.join();
  const pb = b.join();
  const ws = FakeWS.last;
  await handshake(ws);
  const ja = ws.of('join').find((f) => f.r === 'chat:a');
  const jb = ws.of('join').find((f) => f.r === 'chat:b');
  ws.recv({ t: 'err', id: ja.id, r: 'chat:a', code: 107, msg: 'forbidden' });
  ws.recv({ t: 'err', id: jb.id, r: 'chat:b', code: 6, msg: 'unavailable' });
  await assert.rejects(pa, (e) => e.code === 107);
  await waitFor(() => ws.of('join').filter((f) => f.r === 'chat:b').length === 2, 2000, 'join retry');
  await answerJoin(ws, 'chat:b');
  await pb;
});

test('left: room_moved rejoins, kicked stops', async () => {
  const room = await joined('chat:a', { e: 'E1' });
  const ws = FakeWS.last;
  ws.recv({ t: 'left', r: 'chat:a', code: 9, msg: 'moved' });
  await waitFor(() => ws.of('join').length === 2, 2000, 'rejoin');
  assert.deepEqual(ws.of('join')[1].since, { e: 'E1', s: 0 });
  await answerJoin(ws, 'chat:a', { reset: false });
  assert.equal(room.status, 'joined');
  const left = [];
  room.on('left', (e) => left.push(e.code));
  room.on('error', () => {});
  ws.recv({ t: 'left', r: 'chat:a', code: 503, msg: 'kicked' });
  assert.deepEqual(left, [503]);
  assert.equal(room.status, 'left');
});

test('leave sends leave and fails pending operations', async () => {
  const room = await joined();
  const p = room.publish('x');
  const l = room.leave();
  await assert.rejects(p, (e) => e.code === -3);
  await tick();
  const f = FakeWS.last.of('leave')[0];
  assert.equal(f.r, 'chat:a');
  FakeWS.last.recv({ t: 'ok', id: f.id });
  await l;
  assert.equal(room.status, 'left');
});

test('err without a request id goes to the room', async () => {
  const room = await joined();
  const errs = [];
  room.on('error', (e) => errs.push(e.code));
  FakeWS.last.recv({ t: 'err', r: 'chat:a', code: 5, msg: 'rate limited' });
  assert.deepEqual(errs, [5]);
});

test('a frame over maxMessageBytes is refused locally with 103, not sent', async () => {
  const room = await joined('chat:a', {}, { maxMessageBytes: 1000 });
  const errs = [];
  room.on('error', (e) => errs.push(e.code));
  await assert.rejects(room.publish(new Uint8Array(2000)), (e) => e.code === 103);
  room.broadcast(new Uint8Array(2000));
  await waitFor(() => errs.length === 1, 1000, 'broadcast error');
  assert.deepEqual(errs, [103]);
  assert.equal(FakeWS.last.of('pub').length, 0);
  assert.equal(client.status, 'connected');
});

test('events in the same message as joined, or just before it, are not lost', async () => {
  FakeWS.reset();
  client = new Client('ws://x', { WebSocket: FakeWS });
  const room = client.room('chat:a');
  const got = [];
  room.on('message', (m) => got.push(m.seq));
  const p = room.join();
  const ws = FakeWS.last;
  await handshake(ws);
  const j = ws.of('join')[0];
  ws.recv(msg(3)); // overtook the reply
  ws.recv({ t: 'joined', id: j.id, r: 'chat:a', e: 'E1', s: 2, log: [msg(1), msg(2)], reset: true, pres: [] }, msg(3), msg(4));
  await p;
  assert.deepEqual(got, [1, 2, 3, 4]);
});

test('updatePresence updates our own entry once acknowledged (the server does not echo it)', async () => {
  const room = await joined('chat:a', { pres: [{ c: 'c1', u: 'me', d: { n: 1 } }] });
  const seen = [];
  room.on('presence', (p) => seen.push(p));
  const p = room.updatePresence({ n: 2 });
  await tick();
  FakeWS.last.recv({ t: 'ok', id: FakeWS.last.of('pres')[0].id });
  await p;
  assert.deepEqual(room.presence.get('c1').data, { n: 2 });
  assert.deepEqual(seen.map((x) => x.update.map((m) => m.conn)), [['c1']]);
});

test('reset in the same epoch with a seq behind ours starts seqs over', async () => {
  const room = await joined('chat:a', { e: 'E1', s: 10 });
  const msgs = [];
  room.on('message', (m) => msgs.push(m.seq));
  room.on('reset', () => {});
  FakeWS.last.serverClose(1006);
  await waitFor(() => FakeWS.all.length === 2, 2000, 'reconnect');
  await handshake(FakeWS.last);
  await answerJoin(FakeWS.last, 'chat:a', { e: 'E1', s: 3, reset: true, log: [msg(3)] });
  FakeWS.last.recv(msg(4));
  assert.deepEqual(msgs, [3, 4]);
});

test('batched presence: several members in one frame, restated entries are no change', async () => {
  const room = await joined('chat:a', { pres: [{ c: 'c1', u: 'me' }, { c: 'c2', u: 'bob' }] });
  const pres = [];
  room.on('presence', (p) => pres.push(p));
  // one window: c3 and c4 joined, c2 (already in the snapshot) restated,
  // c2 updated is not in the same frame as its restatement; c9 (never seen) left
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', join: [{ c: 'c2', u: 'bob' }, { c: 'c3', u: 'cid' }, { c: 'c4', u: 'dan' }], leave: ['c9'] });
  assert.equal(pres.length, 1);
  assert.deepEqual(pres[0].join.map((m) => m.conn), ['c3', 'c4']);
  assert.deepEqual(pres[0].update, []);
  assert.deepEqual(pres[0].leave, []);
  // a restated entry with new data is an update; a frame that changes nothing is not reported
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', join: [{ c: 'c3', u: 'cid', d: 1 }], upd: [{ c: 'c4', u: 'dan' }] });
  assert.equal(pres.length, 2);
  assert.deepEqual(pres[1].update.map((m) => m.conn), ['c3']);
  assert.deepEqual(pres[1].join, []);
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', join: [{ c: 'c3', u: 'cid', d: 1 }], leave: ['nobody'] });
  assert.equal(pres.length, 2);
  assert.deepEqual([...room.presence.keys()].sort(), ['c1', 'c2', 'c3', 'c4']);
  assert.equal(room.presenceCount, 4);
  assert.equal(room.largeRoom, false);
});

test('large-room mode: count and sample, then the whole list again', async () => {
  const room = await joined('chat:a', { pres: [{ c: 'c1', u: 'me' }, { c: 'c2', u: 'bob' }], cnt: 250 });
  assert.equal(room.largeRoom, true);
  assert.equal(room.presenceCount, 250);
  assert.equal(room.presence.size, 2, 'a sample');
  const pres = [];
  room.on('presence', (p) => pres.push(p));
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', cnt: 251 });
  assert.equal(room.presenceCount, 251);
  assert.deepEqual(pres[0], { join: [], leave: [], update: [], count: 251 });
  // back under the threshold: the whole list replaces the sample
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', all: [{ c: 'c1', u: 'me' }, { c: 'c5', u: 'eve' }] });
  assert.equal(room.largeRoom, false);
  assert.equal(room.presenceCount, 2);
  assert.deepEqual(pres[1].join.map((m) => m.conn), ['c5']);
  assert.deepEqual(pres[1].leave.map((m) => m.conn), ['c2']);
  // deltas again
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', leave: ['c5'] });
  assert.equal(room.presenceCount, 1);
  // leaving large-room mode is reported even when the list is the sample
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', cnt: 9 });
  FakeWS.last.recv({ t: 'pres', r: 'chat:a', all: [{ c: 'c1', u: 'me' }] });
  assert.equal(pres.length, 5);
  assert.deepEqual(pres[4], { join: [], leave: [], update: [] });
  assert.equal(room.presenceCount, 1);
});
