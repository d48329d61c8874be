import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventsURL, observe, parseEvent } from '../../dist/index.js';

class FakeES {
  static last;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.l = {};
    this.closed = false;
    FakeES.last = this;
  }
  addEventListener(t, fn) {
    (this.l[t] ??= []).push(fn);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(t, data, id) {
    for (const fn of this.l[t] ?? []) fn({ data: JSON.stringify(data), lastEventId: id });
  }
}

test('events URL', () => {
  assert.equal(eventsURL('http://h:8080', 'chat:lobby'), 'http://h:8080/v1/rooms/chat:lobby/events');
  assert.equal(
    eventsURL('ws://h/', 'board:1', { h: 20, ephemeral: true, token: 'a b', since: 'E:4' }),
    'http://h/v1/rooms/board:1/events?h=20&ephemeral=1&since=E%3A4&token=a+b',
  );
});

test('events are parsed and typed; members and logs normalized', () => {
  const snap = parseEvent(
    'snapshot',
    JSON.stringify({
      room: 'chat:a',
      epoch: 'E',
      seq: 3,
      presence: [{ c: 'c1', u: 'ann', d: { n: 1 } }, { conn: 'c2', user: 'bob' }],
      state: { k: 1 },
      log: [
        { t: 'msg', s: 2, u: 'ann', c: 'c1', d: 'hi', ts: 5 },
        { room: 'chat:a', seq: 3, key: 'k', data: 1, deleted: false, ts: 6 },
      ],
    }),
  );
  assert.equal(snap.type, 'snapshot');
  assert.deepEqual(snap.presence, [
    { conn: 'c1', user: 'ann', data: { n: 1 }, info: undefined },
    { conn: 'c2', user: 'bob', data: undefined, info: undefined },
  ]);
  assert.deepEqual(snap.log.map((e) => [e.type, e.seq]), [['message', 2], ['state', 3]]);
  const pres = parseEvent('presence', JSON.stringify({ room: 'chat:a', join: [{ c: 'c3' }], leave: ['c1'] }));
  assert.deepEqual(pres, { type: 'presence', room: 'chat:a', join: [{ conn: 'c3', user: undefined, data: undefined, info: undefined }], leave: ['c1'], update: [] });
  const st = parseEvent('state', JSON.stringify({ room: 'r', seq: 4, key: 'k', ts: 1 }));
  assert.equal(st.deleted, true);
  const m = parseEvent('message', JSON.stringify({ room: 'r', seq: 5, user: 'u', conn: 'c', data: { x: 1 }, ts: 2 }));
  assert.deepEqual(m, { type: 'message', room: 'r', seq: 5, user: 'u', conn: 'c', data: { x: 1 }, ts: 2 });
});

test('observe: listens, tracks the last id, closes on a terminal bye', () => {
  const got = [];
  const statuses = [];
  const o = observe('http://h', 'chat:a', { EventSource: FakeES, onEvent: (e) => got.push(e), onStatus: (s) => statuses.push(s), h: 5 });
  const es = FakeES.last;
  assert.equal(es.url, 'http://h/v1/rooms/chat:a/events?h=5');
  es.onopen();
  es.emit('message', { room: 'chat:a', seq: 1, data: 'x', ts: 1 }, 'E:1');
  es.emit('ephemeral', { room: 'chat:a', data: 'y' });
  assert.equal(o.lastEventId, 'E:1');
  es.emit('bye', { code: 1, msg: 'shutdown' });
  assert.equal(es.closed, false, 'non-terminal bye: EventSource retries');
  es.emit('bye', { code: 501, msg: 'unauthorized' });
  assert.equal(es.closed, true);
  assert.deepEqual(got.map((e) => e.type), ['message', 'ephemeral', 'bye', 'bye']);
  assert.deepEqual(statuses, ['open', 'closed']);
  o.close();
});

test('observe: bye token_expired reopens with a fresh token where the stream stopped', async () => {
  const got = [];
  const statuses = [];
  let calls = 0;
  const o = observe('http://h', 'chat:a', {
    EventSource: FakeES,
    token: 'old',
    getToken: async () => `fresh${++calls}`,
    onEvent: (e) => got.push(e),
    onStatus: (s) => statuses.push(s),
  });
  const first = FakeES.last;
  assert.equal(first.url, 'http://h/v1/rooms/chat:a/events?token=old');
  first.onopen();
  first.emit('message', { room: 'chat:a', seq: 7, data: 'x', ts: 1 }, 'E:7');
  first.emit('bye', { code: 4, msg: 'token expired' });
  assert.equal(first.closed, true, 'the expired stream must not retry with its token');
  await new Promise((r) => setTimeout(r, 0));
  const second = FakeES.last;
  assert.notEqual(second, first);
  assert.equal(second.url, 'http://h/v1/rooms/chat:a/events?since=E%3A7&token=fresh1');
  first.emit('message', { room: 'chat:a', seq: 8, data: 'stale', ts: 1 }, 'E:8'); // ignored
  second.onopen();
  second.emit('message', { room: 'chat:a', seq: 8, data: 'y', ts: 2 }, 'E:8');
  assert.deepEqual(got.map((e) => e.type + (e.seq ?? '')), ['message7', 'bye', 'message8']);
  assert.equal(o.lastEventId, 'E:8');
  assert.deepEqual(statuses, ['open', 'reconnecting', 'open']);
  o.close();
  assert.equal(second.closed, true);
});

test('observe: bye token_expired without getToken closes the stream', () => {
  const statuses = [];
  observe('http://h', 'chat:a', { EventSource: FakeES, token: 't', onEvent: () => {}, onStatus: (s) => statuses.push(s) });
  const es = FakeES.last;
  es.emit('bye', { code: 4, msg: 'token expired' });
  assert.equal(es.closed, true);
  assert.deepEqual(statuses, ['closed']);
});
