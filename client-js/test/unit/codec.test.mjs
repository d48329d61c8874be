import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Client, decodeFrames, encodeFrames } from '../../dist/index.js';
import { FakeWS, answerJoin, handshake, tick } from './fake.mjs';

test('several frames in one message round-trip in order', () => {
  const frames = [
    { t: 'msg', r: 'chat:a', s: 1, d: { text: 'hi' }, ts: 1 },
    { t: 'msg', r: 'chat:a', s: 2, d: new Uint8Array([1, 2, 3]), ts: 2 },
    { t: 'ping' },
  ];
  const out = decodeFrames(encodeFrames(frames));
  assert.deepEqual(out, frames);
});

test('undefined keys are left out', () => {
  const [f] = decodeFrames(encodeFrames([{ t: 'hello', v: 1, tok: undefined }]));
  assert.deepEqual(f, { t: 'hello', v: 1 });
});

test('a message that is not frames is rejected', () => {
  assert.throws(() => decodeFrames(new Uint8Array([0xc1])));
  assert.throws(() => decodeFrames(encodeFrames([{ nope: 1 }])));
});

test('client handles a batch of frames in one message and batches its own sends', async () => {
  FakeWS.reset();
  const c = new Client('http://x', { WebSocket: FakeWS });
  const ws = FakeWS.last;
  assert.equal(ws.url, 'ws://x/v1/ws');
  assert.equal(ws.protocols, 'roomd.v1');
  ws.open();
  await tick();
  assert.equal(ws.messages.length, 1);
  assert.equal(ws.sent[0].t, 'hello');
  assert.equal(ws.sent[0].v, 1);
  const a = c.room('chat:a');
  const b = c.room('chat:b');
  const ja = a.join();
  const jb = b.join();
  // welcome alone; both joins go out in one message
  ws.recv({ t: 'welcome', v: 1, c: 'c1', n: 'n', ping: 25 });
  await tick();
  assert.equal(ws.messages.length, 2);
  const joins = decodeFrames(ws.messages[1]);
  assert.deepEqual(joins.map((f) => f.r), ['chat:a', 'chat:b']);
  // both joined answers in one message
  ws.recv(
    { t: 'joined', id: joins[0].id, r: 'chat:a', e: 'E', s: 0, log: [], reset: true, pres: [] },
    { t: 'joined', id: joins[1].id, r: 'chat:b', e: 'E', s: 0, log: [], reset: true, pres: [] },
  );
  await Promise.all([ja, jb]);
  assert.equal(a.status, 'joined');
  assert.equal(b.status, 'joined');
  c.close();
});

test('a text message from the server drops the connection', async () => {
  FakeWS.reset();
  const c = new Client('ws://x/v1/ws', { WebSocket: FakeWS, backoff: { base: 1 } });
  const errs = [];
  c.on('error', (e) => errs.push(e));
  await handshake(FakeWS.last);
  FakeWS.last.onmessage({ data: 'hello' });
  assert.equal(c.status, 'disconnected');
  assert.equal(errs.length, 1);
  c.close();
});

test('room names are validated', () => {
  FakeWS.reset();
  const c = new Client('ws://x', { WebSocket: FakeWS, lazy: true });
  assert.throws(() => c.room('bad room'), /invalid_room/);
  assert.throws(() => c.room(''), /invalid_room/);
  c.room('chat:lobby@x_1.2-3');
  c.close();
});

test('join sends presence and history', async () => {
  FakeWS.reset();
  const c = new Client('ws://x', { WebSocket: FakeWS });
  const r = c.room('chat:a', { presence: { name: 'ann' }, history: 20 });
  const p = r.join();
  await handshake(FakeWS.last);
  const j = await answerJoin(FakeWS.last, 'chat:a');
  await p;
  assert.deepEqual(j.p, { name: 'ann' });
  assert.equal(j.h, 20);
  assert.equal(j.since, undefined);
  c.close();
});
