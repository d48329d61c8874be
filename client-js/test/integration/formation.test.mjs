// The SDK against a cluster that is still forming: a node started with
// --cluster-expect 2 serves no room until a second node is up, and answers
// joins with unavailable (6) meanwhile; the SDK retries until it is joined.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { Client } from '../../dist/index.js';
import { startRoomd, waitFor } from '../harness.mjs';

const nodes = [];
const cluster = (name, ...extra) => [
  '--node-name', name, '--cluster-bind', '127.0.0.1:0', '--cluster-secret', 'sdk-formation-test-secret-0123456789',
  '--cluster-label', 'sdk-formation', '--cluster-fast', '--cluster-expect', '2', ...extra,
];
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

test('a join on a forming node is retried until the cluster has formed', { timeout: 30_000 }, async () => {
  const first = await startRoomd(cluster('sdk-a'));
  nodes.push(first);
  const ready = async (n) => (await fetch(n.http + '/readyz')).status;
  assert.equal(await ready(first), 503);
  assert.match(await (await fetch(first.http + '/readyz')).text(), /^forming: 1 of 2 members/);

  const c = new Client(first.ws, { WebSocket, backoff: { base: 20, max: 200 } });
  const room = c.room('chat:forming');
  const errors = [];
  room.on('error', (e) => errors.push(e));
  const joining = room.join();
  await new Promise((r) => setTimeout(r, 500));
  assert.notEqual(room.status, 'joined', 'joined before the cluster formed');
  const unavailable = async () => {
    const m = (await (await fetch(first.http + '/metrics')).text()).match(/^roomd_errors_total\{code="unavailable"\} (\d+)$/m);
    return m ? +m[1] : 0;
  };
  assert.ok((await unavailable()) >= 2, 'the SDK did not retry the join answered with 6');

  await waitFor(() => first.logs.some((l) => l.msg === 'cluster member'), 5000, 'gossip address');
  const gossip = first.logs.find((l) => l.msg === 'cluster member').gossip;
  const second = await startRoomd(cluster('sdk-b', '--join', gossip));
  nodes.push(second);
  await joining;
  assert.equal(room.status, 'joined');
  assert.deepEqual(errors, []);
  assert.equal(await ready(first), 200);
  c.close();
});
