// Builds the web assets into a temporary folder and compares them, byte for
// byte, with the committed ../server/web/static. Fails when they differ.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildWeb } from './build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const committed = resolve(root, '../server/web/static');

function files(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'roomd-web-'));
try {
  await buildWeb(tmp);
  const want = files(tmp);
  let have = [];
  try {
    have = files(committed);
  } catch {
    /* missing */
  }
  const problems = [];
  for (const f of want) {
    if (!have.includes(f)) problems.push(`missing: server/web/static/${f}`);
    else if (!readFileSync(join(tmp, f)).equals(readFileSync(join(committed, f)))) problems.push(`stale: server/web/static/${f}`);
  }
  for (const f of have) if (!want.includes(f)) problems.push(`extra: server/web/static/${f}`);
  if (problems.length) {
    console.error('check-bundle: the committed web assets do not match a fresh build:');
    for (const p of problems) console.error('  ' + p);
    console.error('Run `npm run build` in client-js/ and commit server/web/static.');
    process.exit(1);
  }
  const gz = gzipSync(readFileSync(join(tmp, 'sdk/roomd.min.js')), { level: 9 }).length;
  console.log(`check-bundle: server/web/static is up to date (${want.length} files; roomd.min.js ${gz} bytes gzipped)`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
