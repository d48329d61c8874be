// The connection: hello/welcome, request ids, batching, liveness, token
// refresh and reconnects. Rooms ride on it (room.ts).
import { backoff, type BackoffOptions } from './backoff.js';
import { concat, decodeFrames, encodeFrame, type Frame } from './codec.js';
import { Emitter } from './emitter.js';
import { CLOSED, DISCONNECTED, isTerminal, RoomdError } from './errors.js';
import { Room, type RoomOptions } from './room.js';
import type { Status, StatusDetail, WebSocketConstructor, WebSocketLike } from './types.js';

export const VERSION = '0.1.0';

export interface ClientOptions {
  /** A fixed token, sent in `hello`. */
  token?: string;
  /**
   * Fetches a fresh token. Called before every connection attempt, on
   * `token_expired`, and shortly before the token in force expires (the new
   * one is then sent in-connection with `auth`).
   */
  getToken?: () => Promise<string> | string;
  /** WebSocket constructor; defaults to the global one (Node 20: pass the `ws` package's). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect backoff (full jitter). */
  backoff?: BackoffOptions;
  /** Sent as `cli` in `hello`. */
  name?: string;
  /** Time to wait for `welcome` after connecting, ms. Default 15000. */
  connectTimeout?: number;
  /**
   * Largest WebSocket message the server accepts (its --max-message-bytes).
   * A frame over it is refused locally with code 103 (too_large) instead of
   * getting the connection closed. Default 65536.
   */
  maxMessageBytes?: number;
  /** Do not connect until `connect()` is called. */
  lazy?: boolean;
  /** Random source in [0, 1), for tests. */
  random?: () => number;
}

export interface ClientEvents {
  status: (status: Status, detail: StatusDetail) => void;
  error: (err: Error) => void;
}

/** Called with the reply frame, or with the error; synchronously, in frame order. */
type Reply = (err: RoomdError | null, f?: Frame) => void;

// Largest message the client builds when batching frames (the server's
// default limit is 64 KiB per message).
const BATCH_BYTES = 32 * 1024;

const g = globalThis as unknown as {
  WebSocket?: WebSocketConstructor;
  location?: { href: string };
  navigator?: { onLine?: boolean };
  addEventListener?: (t: string, fn: () => void) => void;
  removeEventListener?: (t: string, fn: () => void) => void;
};

/** Turns `http(s)://host` or a relative URL into the WebSocket endpoint. */
export function wsURL(url: string): string {
  const u = new URL(url, g.location?.href);
  u.protocol = u.protocol.replace(/^http/, 'ws');
  if (u.pathname === '/') u.pathname = '/v1/ws';
  return u.href;
}

/** Reads the `exp` claim (unix seconds) of a JWT, if it has one. */
export function tokenExpiry(tok: string): number | undefined {
  try {
    const p = JSON.parse(atob(tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof p.exp === 'number' ? p.exp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A connection to roomd, kept open: it reconnects with backoff and resumes
 * every joined room where it left off.
 */
export class Client extends Emitter<ClientEvents> {
  /** Current connection status. */
  status: Status = 'disconnected';
  /** Id of the connection in force (from `welcome`). */
  conn?: string;
  /** User id the server knows this client by. */
  user?: string;
  /** Name of the node serving this connection. */
  node?: string;
  /** The WebSocket URL. */
  readonly url: string;

  private _o: ClientOptions;
  private _WS: WebSocketConstructor;
  private _ws?: WebSocketLike;
  private _gen = 0;
  private _rooms = new Map<string, Room>();
  private _out: Uint8Array[] = [];
  private _id = 0;
  private _reqs = new Map<number, Reply>();
  private _attempt = 0;
  private _stopped = false;
  private _ping = 25000;
  private _tRetry?: ReturnType<typeof setTimeout>;
  private _tLive?: ReturnType<typeof setTimeout>;
  private _tAuth?: ReturnType<typeof setTimeout>;
  private _tok?: string;
  private _online = () => this._wake();
  private _offline = () => this._ws && this._drop(DISCONNECTED, 'offline');

  constructor(url: string, opts: ClientOptions = {}) {
    super();
    this.url = wsURL(url);
    this._o = opts;
    const WS = opts.WebSocket ?? g.WebSocket;
    if (!WS) throw new Error('roomd: no WebSocket; pass { WebSocket } (e.g. from the ws package)');
    this._WS = WS;
    this._tok = opts.token;
    g.addEventListener?.('online', this._online);
    g.addEventListener?.('offline', this._offline);
    if (!opts.lazy) this.connect();
  }

  /** Returns the room of that name (one object per name and client). */
  room(name: string, opts?: RoomOptions): Room {
    let r = this._rooms.get(name);
    if (!r) this._rooms.set(name, (r = new Room(this, name, opts)));
    return r;
  }

  /** Connects, or reconnects now after a terminal error or `close()`. */
  connect(): void {
    this._stopped = false;
    if (this._ws || this.status === 'connecting') return;
    this._attempt = 0;
    clearTimeout(this._tRetry);
    void this._open();
  }

  /** Closes the connection for good; joined rooms are left, pending operations fail. */
  close(): void {
    this._stopped = true;
    clearTimeout(this._tRetry);
    g.removeEventListener?.('online', this._online);
    g.removeEventListener?.('offline', this._offline);
    for (const r of this._rooms.values()) r._close(new RoomdError(CLOSED, 'client closed', r.name));
    this._drop(0, 'closed');
  }

  // ---- used by rooms ----

  /**
   * @internal Sends a frame (batched with the others of this tick). False when
   * not connected; throws RoomdError 103 when the frame is over the size limit.
   */
  _send(f: Frame): boolean {
    if (!this._ws || (this.status !== 'connected' && f.t !== 'hello')) return false;
    const b = encodeFrame(f);
    if (b.length > (this._o.maxMessageBytes ?? 65536)) throw new RoomdError(103, `frame of ${b.length} bytes`, f.r as string);
    this._out.push(b);
    if (this._out.length === 1) queueMicrotask(() => this._flush());
    return true;
  }

  /** @internal Sends a request and waits for its reply (`ok`, `joined`) or `err`. */
  _request(f: Frame): Promise<Frame> {
    return new Promise((res, rej) => this._call(f, (e, r) => (e ? rej(e) : res(r!))));
  }

  /**
   * @internal Sends a request; `cb` gets the reply synchronously, before the
   * frames that follow it in the same message are handled.
   */
  _call(f: Frame, cb: Reply): void {
    const id = ++this._id;
    try {
      if (!this._send({ ...f, id })) return cb(new RoomdError(DISCONNECTED, 'not connected', f.r as string));
    } catch (e) {
      return cb(e as RoomdError);
    }
    this._reqs.set(id, cb);
  }

  /** @internal */
  _random(): number {
    return (this._o.random ?? Math.random)();
  }

  /** @internal */
  _backoff(attempt: number): number {
    return backoff(attempt, this._o.backoff, () => this._random());
  }

  // ---- connection lifecycle ----

  private _status(s: Status, d: StatusDetail = {}): void {
    this.status = s;
    this.emit('status', s, d);
  }

  private async _open(): Promise<void> {
    const gen = ++this._gen;
    this._status('connecting');
    let tok = this._tok;
    try {
      if (this._o.getToken) tok = this._tok = await this._o.getToken();
    } catch (e) {
      if (gen !== this._gen) return;
      this.emit('error', e as Error);
      return this._retry(DISCONNECTED, 'getToken failed');
    }
    if (gen !== this._gen || this._stopped) return;
    let ws: WebSocketLike;
    try {
      ws = new this._WS(this.url, 'roomd.v1');
    } catch (e) {
      this.emit('error', e as Error);
      return this._retry(DISCONNECTED, String(e));
    }
    this._ws = ws;
    ws.binaryType = 'arraybuffer';
    this._live(this._o.connectTimeout ?? 15000);
    ws.onopen = () => {
      if (gen === this._gen)
        this._send({ t: 'hello', v: 1, tok, cli: this._o.name ?? 'roomd-js/' + VERSION, c: this.conn });
    };
    ws.onmessage = (ev) => {
      if (gen === this._gen) this._data(ev.data);
    };
    ws.onclose = (ev) => {
      if (gen !== this._gen) return;
      const own = ev.code >= 4000 && ev.code < 5000;
      this._drop(own ? ev.code - 4000 : ev.code, ev.reason, !own);
    };
    ws.onerror = () => {}; // a close event follows
  }

  private _flush(): void {
    const parts = this._out;
    const ws = this._ws;
    this._out = [];
    if (!ws || !parts.length) return;
    let batch: Uint8Array[] = [];
    let n = 0;
    try {
      for (const p of parts) {
        if (n && n + p.length > BATCH_BYTES) {
          ws.send(concat(batch));
          batch = [];
          n = 0;
        }
        batch.push(p);
        n += p.length;
      }
      ws.send(concat(batch));
    } catch {
      // the socket is closing: its close event drives the reconnect
    }
  }

  /** Arms the dead-link timer: silence for `ms` drops the connection. */
  private _live(ms: number): void {
    clearTimeout(this._tLive);
    this._tLive = setTimeout(() => this._drop(3, 'no data from server'), ms);
  }

  private _data(data: unknown): void {
    this._live(this.status === 'connected' ? this._ping + 10000 : (this._o.connectTimeout ?? 15000));
    let frames: Frame[];
    try {
      if (typeof data === 'string') throw new Error('text message');
      frames = decodeFrames(data as ArrayBuffer);
    } catch (e) {
      this.emit('error', new RoomdError(500, 'undecodable message from server: ' + (e as Error).message));
      return this._drop(DISCONNECTED, 'undecodable message');
    }
    for (const f of frames) {
      if (!this._ws) return; // dropped while handling an earlier frame
      this._frame(f);
    }
  }

  private _frame(f: Frame): void {
    const id = f.id as number | undefined;
    switch (f.t) {
      case 'welcome':
        this.conn = f.c as string;
        this.user = f.u as string | undefined;
        this.node = f.n as string | undefined;
        this._ping = ((f.ping as number) || 25) * 1000;
        this._attempt = 0;
        this._live(this._ping + 10000);
        this._status('connected');
        this._auth(f.exp as number | undefined);
        for (const r of this._rooms.values()) r._up();
        return;
      case 'bye':
        return this._drop(f.code as number, f.msg as string);
      case 'ping':
        return;
      case 'ok':
      case 'joined':
      case 'err': {
        const p = id !== undefined ? this._reqs.get(id) : undefined;
        if (p) {
          this._reqs.delete(id!);
          if (f.t === 'err') p(new RoomdError(f.code as number, f.msg as string, f.r as string | undefined));
          else p(null, f);
          return;
        }
        if (f.t !== 'err') return;
        const err = new RoomdError(f.code as number, f.msg as string, f.r as string | undefined);
        const r = f.r !== undefined ? this._rooms.get(f.r as string) : undefined;
        if (r) r._error(err);
        else this.emit('error', err);
        return;
      }
    }
    if (typeof f.r === 'string') this._rooms.get(f.r)?._frame(f);
  }

  /** Schedules the in-connection token refresh before `exp` (unix s). */
  private _auth(exp?: number): void {
    clearTimeout(this._tAuth);
    const get = this._o.getToken;
    if (!exp || !get) return;
    const left = exp * 1000 - Date.now();
    const gen = this._gen;
    this._tAuth = setTimeout(async () => {
      try {
        const tok = await get();
        if (gen !== this._gen) return;
        this._tok = tok;
        await this._request({ t: 'auth', tok });
        if (gen === this._gen) this._auth(tokenExpiry(tok));
      } catch (e) {
        if (gen === this._gen) this.emit('error', e as Error);
      }
    }, Math.max(1000, left - Math.min(30000, left / 4)));
  }

  /**
   * Ends the connection in force (if any) and decides what comes next. `code`
   * is a roomd code, or a WebSocket close code when `ws` is true.
   */
  private _drop(code: number, msg: string, ws = false): void {
    const sock = this._ws;
    const was = this.status;
    this._ws = undefined;
    this._gen++;
    this._out = [];
    clearTimeout(this._tLive);
    clearTimeout(this._tAuth);
    if (sock) {
      sock.onclose = sock.onmessage = sock.onopen = null;
      try {
        sock.close(1000);
      } catch {
        /* already closed */
      }
    }
    const reqs = [...this._reqs.values()];
    this._reqs.clear();
    for (const r of this._rooms.values()) r._down();
    for (const p of reqs) p(new RoomdError(DISCONNECTED, msg));
    if (this._stopped) {
      if (this.status !== 'disconnected') this._status('disconnected', { code, msg, terminal: true });
      return;
    }
    // token_expired with no way to get a fresh token cannot be fixed by retrying
    if (!ws && (isTerminal(code) || (code === 4 && !this._o.getToken))) {
      // Rooms stay wanted: connect() after user action resumes them.
      this._stopped = true;
      const err = new RoomdError(code, msg);
      for (const r of this._rooms.values()) r._close(err, true);
      this._status('disconnected', { code, msg, terminal: true });
      this.emit('error', err);
      return;
    }
    // shutdown and token_expired of a working connection: reconnect at once
    // (a little jitter against herds). Anything else, or failing again: back off.
    const now = !ws && (code === 1 || code === 4) && was === 'connected';
    this._retry(code, msg, now ? Math.floor(this._random() * 250) : undefined);
  }

  private _retry(code: number, msg: string, delay?: number): void {
    clearTimeout(this._tRetry);
    if (g.navigator?.onLine === false) {
      this._status('disconnected', { code, msg });
      return; // the online event wakes us
    }
    const d = delay ?? this._backoff(this._attempt++);
    this._status('disconnected', { code, msg, retryIn: d });
    this._tRetry = setTimeout(() => void this._open(), d);
  }

  private _wake(): void {
    if (this._stopped || this._ws || this.status === 'connecting') return;
    this.connect();
  }
}
