// A fake WebSocket for unit tests: records what the client sends and lets the
// test play the server.
import { decodeFrames, encodeFrames } from '../../dist/index.js';

export class FakeWS {
  static all = [];
  static reset() {
    FakeWS.all = [];
  }
  static get last() {
    return FakeWS.all[FakeWS.all.length - 1];
  }

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.binaryType = 'blob';
    this.readyState = 0;
    this.messages = []; // raw messages sent by the client
    this.sent = []; // decoded frames sent by the client
    this.closedWith = undefined;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeWS.all.push(this);
  }

  send(data) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.messages.push(data);
    this.sent.push(...decodeFrames(data));
  }

  close(code) {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }

  // ---- the test plays the server ----
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }

  recv(...frames) {
    const b = encodeFrames(frames);
    this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  }

  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  /** Frames of type t sent so far. */
  of(t) {
    return this.sent.filter((f) => f.t === t);
  }
}

/** Lets queued microtasks and immediate callbacks run. */
export const tick = () => new Promise((r) => setImmediate(r));

/** Polls fn until it returns a truthy value (or throws after ms). */
export async function waitFor(fn, ms = 2000, what = 'condition') {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Opens the fake socket and answers hello with welcome. */
export async function handshake(ws, welcome = {}) {
  ws.open();
  await tick();
  ws.recv({ t: 'welcome', v: 1, c: 'c1', n: 'node1', ping: 25, ...welcome });
  await tick();
}

/** Answers the last join with joined. */
export async function answerJoin(ws, room, extra = {}) {
  await waitFor(() => ws.of('join').some((f) => f.r === room), 2000, 'join of ' + room);
  const j = ws.of('join').filter((f) => f.r === room).at(-1);
  ws.recv({ t: 'joined', id: j.id, r: room, e: 'E1', s: 0, log: [], reset: true, pres: [], st: {}, ...extra });
  await tick();
  return j;
}
