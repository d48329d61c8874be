import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoff } from '../../dist/index.js';

test('full jitter stays within [0, min(max, base*2^n))', () => {
  const o = { base: 100, max: 5000 };
  for (let n = 0; n < 40; n++) {
    const cap = Math.min(5000, 100 * 2 ** n);
    assert.equal(backoff(n, o, () => 0), 0);
    assert.equal(backoff(n, o, () => 0.999999), Math.floor(0.999999 * cap));
    for (let i = 0; i < 50; i++) {
      const d = backoff(n, o);
      assert.ok(d >= 0 && d < cap, `attempt ${n}: ${d} not in [0, ${cap})`);
    }
  }
});

test('defaults: 500 ms first cap, 30 s largest', () => {
  assert.equal(backoff(0, {}, () => 0.5), 250);
  assert.equal(backoff(3, {}, () => 0.5), 2000);
  assert.equal(backoff(100, {}, () => 0.5), 15000);
});

test('delays are spread (jitter)', () => {
  const seen = new Set();
  for (let i = 0; i < 100; i++) seen.add(backoff(5, { base: 100, max: 10000 }));
  assert.ok(seen.size > 50);
});
