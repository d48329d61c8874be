// Builds the SDK.
//   node scripts/build.mjs              dist/ (ESM + .d.ts) and the web assets
//   node scripts/build.mjs --lib        dist/index.js only (fast; used before unit tests)
//   node scripts/build.mjs --web DIR    only the web assets, into DIR
// The web assets are the minified bundle (sdk/roomd.min.js, msgpack inlined)
// and the demo pages from demo/, written to ../server/web/static by default.
// Output is deterministic: same sources, same bytes.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const args = process.argv.slice(2);

export async function buildLib() {
  await build({
    entryPoints: [join(root, 'src/index.ts')],
    outfile: join(root, 'dist/index.js'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    external: ['@msgpack/msgpack'],
    sourcemap: true,
    logLevel: 'warning',
  });
}

export async function buildWeb(out) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'sdk'), { recursive: true });
  await build({
    entryPoints: [join(root, 'src/index.ts')],
    outfile: join(out, 'sdk/roomd.min.js'),
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    legalComments: 'none',
    mangleProps: /^_[a-z]/, // internals only: public names never start with _
    banner: { js: `/* roomd SDK ${pkg.version}. Includes @msgpack/msgpack (ISC license). */` },
    logLevel: 'warning',
  });
  cpSync(join(root, 'demo'), out, { recursive: true });
}

if (args[0] === '--lib') {
  await buildLib();
} else if (args[0] === '--web') {
  await buildWeb(resolve(args[1]));
} else {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  await buildLib();
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });
  await buildWeb(resolve(root, '../server/web/static'));
}
