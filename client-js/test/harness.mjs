// Test helpers shared by the integration and browser suites: build and start a
// real roomd, a TCP proxy that can cut or blackhole connections, JWT minting,
// polling, and a small EventSource for Node.
import { execFileSync, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let built;
/** Path of a roomd binary: $ROOMD_BIN, or one built from this repo (once per process). */
export function roomdBinary() {
  if (process.env.ROOMD_BIN) return process.env.ROOMD_BIN;
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'roomd-js-'));
  const bin = join(dir, 'roomd');
  execFileSync('go', ['build', '-o', bin, './cmd/roomd'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  built = bin;
  return bin;
}

const running = new Set();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/**
 * Starts roomd on a free port and resolves once it logs `listening`.
 * Returns { addr, http, ws, logs, stop() }.
 */
export function startRoomd(args = [], { timeout = 20_000 } = {}) {
  const proc = spawn(roomdBinary(), ['--addr', '127.0.0.1:0', '--log-format', 'json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const logs = [];
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      rej(new Error('roomd did not log listening in time:\n' + logs.map((l) => JSON.stringify(l)).join('\n')));
    }, timeout);
    let buf = '';
    const onData = (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let rec;
        try {
          rec = JSON.parse(line);
        } catch {
          rec = { msg: line };
        }
        logs.push(rec);
        if (rec.msg === 'listening' && rec.addr) {
          clearTimeout(timer);
          const addr = rec.addr;
          res({
            addr,
            http: 'http://' + addr,
            ws: 'ws://' + addr + '/v1/ws',
            logs,
            proc,
            stop: () => stop(proc),
          });
        }
      }
    };
    proc.stdout.setEncoding('utf8').on('data', onData);
    proc.stderr.setEncoding('utf8').on('data', onData);
    proc.on('exit', (code) => {
      running.delete(proc);
      clearTimeout(timer);
      rej(new Error(`roomd exited (${code}) before listening:\n` + logs.map((l) => JSON.stringify(l)).join('\n')));
    });
  });
}

function stop(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => {
      clearTimeout(t);
      running.delete(proc);
      res();
    });
    proc.kill('SIGTERM');
  });
}

/**
 * A TCP proxy to `target` (host:port). `drop()` destroys every connection;
 * `blackhole(true)` keeps the connections open now open but stops forwarding
 * their server -> client bytes (replies are lost, as on a dying link); new
 * connections are not affected.
 */
export function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), +target.slice(target.lastIndexOf(':') + 1)];
  const pairs = new Set();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(port, host);
    const pair = { client, upstream, hole: false };
    pairs.add(pair);
    client.on('data', (b) => upstream.write(b));
    upstream.on('data', (b) => {
      if (!pair.hole) client.write(b);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  return new Promise((res) => {
    server.listen(0, '127.0.0.1', () => {
      const addr = '127.0.0.1:' + server.address().port;
      res({
        addr,
        http: 'http://' + addr,
        ws: 'ws://' + addr + '/v1/ws',
        get connections() {
          return connections;
        },
        get open() {
          return pairs.size;
        },
        blackhole(on) {
          for (const p of pairs) p.hole = on;
        },
        drop() {
          for (const p of pairs) {
            p.client.destroy();
            p.upstream.destroy();
          }
          pairs.clear();
        },
        close() {
          this.drop();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

/** Polls fn (sync or async) until it returns a truthy value; throws after ms. */
export async function waitFor(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}` + (last ? ': ' + last.message : ''));
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Mints an HS256 JWT. */
export function mintToken(secret, claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = enc({ alg: 'HS256', typ: 'JWT' });
  const body = enc(claims);
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/**
 * A small EventSource for Node (fetch + text/event-stream parsing), enough
 * for the SDK's observe(): named events, ids, retry, Last-Event-ID reconnects.
 */
export class NodeEventSource {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.onopen = this.onerror = null;
    this._l = {};
    this._last = '';
    this._retry = 3000;
    this._ac = null;
    this._closed = false;
    this._run();
  }
  addEventListener(t, fn) {
    (this._l[t] ??= []).push(fn);
  }
  close() {
    this._closed = true;
    this.readyState = 2;
    this._ac?.abort();
  }
  async _run() {
    while (!this._closed) {
      this._ac = new AbortController();
      try {
        const headers = { Accept: 'text/event-stream' };
        if (this._last) headers['Last-Event-ID'] = this._last;
        const r = await fetch(this.url, { headers, signal: this._ac.signal });
        if (r.status !== 200 || !(r.headers.get('content-type') || '').startsWith('text/event-stream')) {
          this.readyState = 2;
          this._closed = true;
          this.onerror?.({ status: r.status });
          return;
        }
        this.readyState = 1;
        this.onopen?.({});
        const dec = new TextDecoder();
        let buf = '';
        let ev = { type: 'message', data: [], id: undefined };
        for await (const chunk of r.body) {
          buf += dec.decode(chunk, { stream: true });
          let i;
          while ((i = buf.search(/\r?\n/)) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + (buf[i] === '\r' ? 2 : 1));
            if (line === '') {
              if (ev.id !== undefined) this._last = ev.id;
              if (ev.data.length) for (const fn of this._l[ev.type] ?? []) fn({ data: ev.data.join('\n'), lastEventId: this._last });
              ev = { type: 'message', data: [], id: undefined };
            } else if (!line.startsWith(':')) {
              const c = line.indexOf(':');
              const f = c < 0 ? line : line.slice(0, c);
              const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
              if (f === 'event') ev.type = v;
              else if (f === 'data') ev.data.push(v);
              else if (f === 'id') ev.id = v;
              else if (f === 'retry' && /^\d+$/.test(v)) this._retry = +v;
            }
          }
        }
      } catch {
        /* aborted or network error: retry */
      }
      if (this._closed) return;
      this.readyState = 0;
      this.onerror?.({});
      await new Promise((r) => setTimeout(r, Math.min(this._retry, 500)));
    }
  }
}

/** The Chromium the browser tests drive: $CHROMIUM, else /usr/bin/chromium. */
export const chromiumPath = () => process.env.CHROMIUM || '/usr/bin/chromium';

/** Throws, in one line, how to get Chromium when it is not where the tests look. */
export function needChromium() {
  const path = chromiumPath();
  if (!existsSync(path)) {
    throw new Error(`Chromium not found at ${path}: install it (Debian/Ubuntu: apt-get install chromium; macOS: brew install --cask chromium) or set CHROMIUM=/path/to/chromium`);
  }
  return path;
}

/** Chromium's flags for the headless browser tests. */
export const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * Opens the chat demo of the node at base (its http:// URL) in a fresh browser
 * context, as name, and resolves with the page once it has joined room.
 */
export async function openChat(browser, base, room, name, timeout = 15_000) {
  const ctx = await browser.newContext();
  await ctx.addInitScript((n) => localStorage.setItem('roomd.name', n), name);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.log(`# [${name}] page error: ${e.message}`));
  await page.goto(`${base}/chat/?room=${room}`);
  await page.waitForFunction(() => document.body.dataset.joined === '1', null, { timeout });
  return page;
}
