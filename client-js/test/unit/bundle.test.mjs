// The served bundle must stay small: <= 12 KiB gzipped.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';

const LIMIT = 12 * 1024;

test('sdk/roomd.min.js is <= 12 KiB gzipped', () => {
  const file = new URL('../../../server/web/static/sdk/roomd.min.js', import.meta.url);
  const src = readFileSync(file);
  const gz = gzipSync(src, { level: 9 }).length;
  console.log(`# roomd.min.js: ${src.length} bytes, ${gz} bytes gzipped (limit ${LIMIT})`);
  assert.ok(gz <= LIMIT, `bundle is ${gz} bytes gzipped, over ${LIMIT}`);
  assert.match(src.toString(), /export\{/, 'ESM exports');
});
