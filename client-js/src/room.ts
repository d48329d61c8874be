// A room as seen by one client: joins and resumes, dedupes the log by seq,
// keeps presence and state maps, and retries publishes until acknowledged.
import type { Client } from './client.js';
import type { Frame } from './codec.js';
import { Emitter } from './emitter.js';
import { CLOSED, DISCONNECTED, OVERLOADED, RoomdError, TIMEOUT } from './errors.js';
import type { Ephemeral, Member, Message, PresenceChange, ResetInfo, StateChange } from './types.js';

export interface RoomOptions {
  /** Presence data announced on join. */
  presence?: unknown;
  /** Recent messages wanted on a fresh join (`h`). Default 0. */
  history?: number;
}

export interface OpOptions {
  /** Give up after this many ms (the operation may still take effect). Default 10000. */
  timeout?: number;
}

export interface RoomEvents {
  message: (m: Message) => void;
  presence: (p: PresenceChange) => void;
  state: (s: StateChange) => void;
  ephemeral: (e: Ephemeral) => void;
  reset: (r: ResetInfo) => void;
  error: (e: RoomdError) => void;
  /** Joined (first time and after each resume). */
  joined: () => void;
  /** The server removed this connection from the room for good. */
  left: (e: RoomdError) => void;
}

export type RoomStatus = 'idle' | 'joining' | 'joined' | 'left';

interface Op {
  f: Frame;
  res: (f: Frame) => void;
  rej: (e: RoomdError) => void;
  timer: ReturnType<typeof setTimeout>;
  tries: number;
  sent: number; // join generation it was last sent in
}

const NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** A random idempotency key (24 hex characters). */
export function newKey(): string {
  const b = crypto.getRandomValues(new Uint8Array(12));
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

const member = (m: Frame | Record<string, unknown>): Member => ({
  conn: m.c as string,
  user: m.u as string | undefined,
  data: m.d,
  info: m.i,
});

const sameMember = (a: Member, b: Member): boolean => a.user === b.user && JSON.stringify([a.data, a.info]) === JSON.stringify([b.data, b.info]);

// Next animation frame where there is one (coalesces cursors to the display
// rate), else ~16 ms.
const nextFrame = (fn: () => void): void => {
  const w = globalThis as unknown as { requestAnimationFrame?: (f: () => void) => void; document?: { visibilityState?: string } };
  if (w.requestAnimationFrame && w.document?.visibilityState === 'visible') w.requestAnimationFrame(fn);
  else setTimeout(fn, 16);
};

export class Room extends Emitter<RoomEvents> {
  readonly name: string;
  /**
   * Members by connection id. In large-room mode (see `largeRoom`), a sample
   * of them as of the last join.
   */
  readonly presence = new Map<string, Member>();
  /**
   * The room is in large-room mode: above the server's threshold it sends the
   * member count (`presenceCount`) instead of every presence change.
   */
  largeRoom = false;
  private _count = 0;
  /** The room's state map. */
  readonly state = new Map<string, unknown>();
  /** Epoch of the room's log, once joined. */
  epoch?: string;
  /** Seq of the last event seen. */
  seq = 0;
  status: RoomStatus = 'idle';

  private _c: Client;
  private _o: RoomOptions;
  private _want = false;
  private _jgen = 0;
  private _attempt = 0;
  private _tJoin?: ReturnType<typeof setTimeout>;
  private _waiters: [() => void, (e: RoomdError) => void][] = [];
  private _ops = new Set<Op>();
  private _overloads = 0; // publishes refused with overloaded in a row
  private _pres: unknown;
  private _eph = new Map<string, unknown>();
  private _ephOn = false;
  private _early: Frame[] = []; // durable events that came before `joined`

  /** @internal Use `client.room(name)`. */
  constructor(client: Client, name: string, opts: RoomOptions = {}) {
    super();
    if (!NAME.test(name)) throw new RoomdError(102, name);
    this._c = client;
    this.name = name;
    this._o = opts;
    this._pres = opts.presence;
  }

  /** Joins the room; resolves once joined. Rejoins and resumes by itself after reconnects. */
  join(): Promise<void> {
    if (this.status === 'joined') return Promise.resolve();
    this._want = true;
    const p = new Promise<void>((res, rej) => this._waiters.push([res, rej]));
    if (this.status !== 'joining') {
      this.status = 'idle';
      this._up();
    }
    return p;
  }

  /** Leaves the room. Pending operations fail with code CLOSED. */
  async leave(): Promise<void> {
    const was = this.status;
    this._close(new RoomdError(CLOSED, 'left', this.name));
    this.epoch = undefined;
    this.seq = 0;
    this.presence.clear();
    this.largeRoom = false;
    if (was === 'joined') await this._c._request({ t: 'leave', r: this.name }).catch(() => {});
    else if (was === 'joining') this._c._send({ t: 'leave', r: this.name });
  }

  /**
   * Publishes a durable message; resolves with its seq once acknowledged.
   * It is resent across reconnects with the same idempotency key, so the room
   * logs it once.
   */
  publish(data: unknown, o?: OpOptions): Promise<number> {
    return this._op({ t: 'pub', r: this.name, d: data, key: newKey() }, o);
  }

  /**
   * Sends an ephemeral message to the members online now. Calls within one
   * frame interval are coalesced: only the latest `data` per `channel` goes.
   */
  broadcast(data: unknown, channel = ''): void {
    this._eph.set(channel, data);
    if (this._ephOn) return;
    this._ephOn = true;
    nextFrame(() => {
      this._ephOn = false;
      try {
        if (this.status === 'joined') for (const d of this._eph.values()) this._c._send({ t: 'pub', r: this.name, d, eph: true });
      } catch (e) {
        this.emit('error', e as RoomdError);
      }
      this._eph.clear();
    });
  }

  /** Sets a state key; resolves with the change's seq. `null`/`undefined` deletes. */
  set(key: string, value: unknown, o?: OpOptions): Promise<number> {
    return this._op({ t: 'set', r: this.name, k: key, d: value ?? undefined }, o);
  }

  /** Deletes a state key; resolves with the change's seq. */
  delete(key: string, o?: OpOptions): Promise<number> {
    return this._op({ t: 'set', r: this.name, k: key }, o);
  }

  /** The number of members: the server's count in large-room mode, else `presence.size`. */
  get presenceCount(): number {
    return this.largeRoom ? this._count : this.presence.size;
  }

  /** Replaces this connection's presence data (kept for rejoins). */
  async updatePresence(data: unknown): Promise<void> {
    this._pres = data;
    if (this.status !== 'joined') return; // the next join carries it
    try {
      await this._c._request({ t: 'pres', r: this.name, d: data });
    } catch (e) {
      if ((e as RoomdError).code !== DISCONNECTED) throw e;
      return;
    }
    // the server does not echo our own presence changes: apply ours here
    const me = this.presence.get(this._c.conn!);
    if (me && this._pres === data) {
      const m = { ...me, data };
      this.presence.set(m.conn, m);
      this.emit('presence', { join: [], leave: [], update: [m] });
    }
  }

  // ---- internals, driven by the client ----

  private _op(f: Frame, o: OpOptions = {}): Promise<number> {
    if (!this._want) return Promise.reject(new RoomdError(104, 'join first', this.name));
    return new Promise<Frame>((res, rej) => {
      const op: Op = {
        f,
        res,
        rej,
        tries: 0,
        sent: -1,
        timer: setTimeout(() => {
          this._ops.delete(op);
          rej(new RoomdError(TIMEOUT, f.t, this.name));
        }, o.timeout ?? 10000),
      };
      this._ops.add(op);
      this._send(op);
    }).then((ok) => ok.s as number);
  }

  private _send(op: Op): void {
    if (this.status !== 'joined' || !this._ops.has(op) || op.sent === this._jgen) return;
    op.sent = this._jgen;
    this._c._request(op.f).then(
      (ok) => {
        if (op.f.t === 'pub') this._overloads = 0;
        if (!this._ops.delete(op)) return;
        clearTimeout(op.timer);
        op.res(ok);
      },
      (e: RoomdError) => {
        if (!this._ops.has(op)) return;
        if (e.code === DISCONNECTED) return; // resent after the rejoin
        if (e.code === OVERLOADED && op.f.t === 'pub') {
          // Refused, not published: whether and when to publish again is
          // the app's decision, with a suggested wait.
          this._ops.delete(op);
          clearTimeout(op.timer);
          const msg = e.message.replace(/^overloaded(: )?/, '');
          op.rej(new RoomdError(e.code, msg, this.name, this._c._backoff(this._overloads++)));
          return;
        }
        if (e.code < 100) {
          // transient (rate_limited, unavailable, overloaded...): try again soon
          const gen = this._jgen;
          setTimeout(() => {
            if (gen === this._jgen) {
              op.sent = -1;
              this._send(op);
            }
          }, this._c._backoff(op.tries++));
          return;
        }
        this._ops.delete(op);
        clearTimeout(op.timer);
        op.rej(e);
      },
    );
  }

  /** @internal The connection is up: (re)join if wanted. */
  _up(): void {
    if (!this._want || this.status !== 'idle' || this._c.status !== 'connected') return;
    clearTimeout(this._tJoin);
    this.status = 'joining';
    const gen = ++this._jgen;
    const f: Frame = { t: 'join', r: this.name, p: this._pres, h: this._o.history };
    if (this.epoch !== undefined) f.since = { e: this.epoch, s: this.seq };
    this._early = [];
    this._c._call(f, (e, j) => {
      if (gen !== this._jgen) return;
      if (!e) return this._joined(j!);
      if (e.code === DISCONNECTED) return;
      this.status = 'idle';
      if (e.code < 100) {
        this._tJoin = setTimeout(() => this._up(), this._c._backoff(this._attempt++));
        return;
      }
      this._close(e);
      this.emit('error', e);
    });
  }

  /** @internal The connection is down. */
  _down(): void {
    if (this.status === 'joining' || this.status === 'joined') this.status = 'idle';
    this._jgen++;
  }

  /** @internal Stops wanting the room (unless `keep`), failing what waits on it. */
  _close(e: RoomdError, keep = false): void {
    clearTimeout(this._tJoin);
    if (!keep) {
      this._want = false;
      this.status = 'left';
      this._jgen++;
    }
    for (const op of this._ops) {
      clearTimeout(op.timer);
      op.rej(e);
    }
    this._ops.clear();
    for (const [, rej] of this._waiters.splice(0)) rej(e);
  }

  /** @internal An `err` about this room that answers no request. */
  _error(e: RoomdError): void {
    this.emit('error', e);
  }

  private _joined(j: Frame): void {
    const e = j.e as string;
    const s = j.s as number;
    if (j.reset) {
      if (this.epoch !== undefined) this.emit('reset', { epoch: e, previousEpoch: this.epoch, seq: s });
      // another epoch (or a log that went back): seqs start over
      if (e !== this.epoch || s < this.seq) this.seq = 0;
      this.epoch = e;
      this.state.clear();
      const st = (j.st ?? {}) as Record<string, unknown>;
      for (const k of Object.keys(st)) this.state.set(k, st[k]);
      this.emit('state', { snapshot: true, seq: s });
    }
    this.epoch = e;
    for (const ev of (j.log ?? []) as Frame[]) this._event(ev);
    if (s > this.seq) this.seq = s;

    // presence: replace, and tell the difference
    const ch = this._replacePresence((j.pres ?? []) as Frame[]);
    const wasLarge = this.largeRoom;
    this.largeRoom = typeof j.cnt === 'number' && j.cnt > 0;
    if (this.largeRoom) {
      this._count = j.cnt as number;
      ch.count = this._count;
    }
    if (ch.join.length || ch.leave.length || ch.update.length || this.largeRoom || wasLarge) this.emit('presence', ch);

    this.status = 'joined';
    this._attempt = 0;
    // events that overtook the reply: deduped by seq like the rest
    for (const ev of this._early.splice(0)) this._event(ev);
    for (const [res] of this._waiters.splice(0)) res();
    this.emit('joined');
    for (const op of this._ops) this._send(op);
  }

  /** A logged event (live or from `log`): delivered once per seq within the epoch. */
  private _event(f: Frame): void {
    const s = f.s as number;
    if (s <= this.seq) return;
    this.seq = s;
    const base = { seq: s, user: f.u as string | undefined, conn: f.c as string | undefined, ts: f.ts as number };
    if (f.t === 'msg') {
      this.emit('message', { ...base, data: f.d });
    } else if (f.t === 'state') {
      const k = f.k as string;
      const del = f.d === undefined || f.d === null;
      if (del) this.state.delete(k);
      else this.state.set(k, f.d);
      this.emit('state', { ...base, key: k, value: del ? undefined : f.d, deleted: del });
    }
  }

  /**
   * Replaces the presence map with a snapshot and returns the difference.
   */
  private _replacePresence(list: Frame[]): PresenceChange {
    const old = new Map(this.presence);
    const ch: PresenceChange = { join: [], leave: [], update: [] };
    this.presence.clear();
    for (const raw of list) {
      const m = member(raw);
      this.presence.set(m.conn, m);
      const was = old.get(m.conn);
      old.delete(m.conn);
      if (!was) ch.join.push(m);
      else if (!sameMember(was, m)) ch.update.push(m);
    }
    ch.leave = [...old.values()];
    return ch;
  }

  /**
   * Applies a pres frame. Its lists name distinct connections; `join` and
   * `upd` replace an entry, `leave` removes one. A frame may restate what the
   * join snapshot already showed: that is no change, and is not reported.
   */
  private _presFrame(f: Frame): void {
    let ch: PresenceChange = { join: [], leave: [], update: [] };
    const wasLarge = this.largeRoom;
    if (Array.isArray(f.all)) {
      // the room left large-room mode: the whole list
      this.largeRoom = false;
      ch = this._replacePresence(f.all as Frame[]);
    }
    if (typeof f.cnt === 'number' && f.cnt > 0) {
      this.largeRoom = true;
      this._count = f.cnt;
      ch.count = f.cnt;
    }
    const put = (raw: Frame): void => {
      const m = member(raw);
      const was = this.presence.get(m.conn);
      this.presence.set(m.conn, m);
      if (!was) ch.join.push(m);
      else if (!sameMember(was, m)) ch.update.push(m);
    };
    for (const raw of (f.join ?? []) as Frame[]) put(raw);
    for (const raw of (f.upd ?? []) as Frame[]) put(raw);
    for (const c of (f.leave ?? []) as string[]) {
      const m = this.presence.get(c);
      if (m && this.presence.delete(c)) ch.leave.push(m);
    }
    if (ch.join.length || ch.leave.length || ch.update.length || ch.count !== undefined || wasLarge !== this.largeRoom) this.emit('presence', ch);
  }

  /** @internal A frame for this room that answers no request. */
  _frame(f: Frame): void {
    if (this.status === 'joining' && (f.t === 'msg' || f.t === 'state')) this._early.push(f);
    if (this.status !== 'joined') return;
    switch (f.t) {
      case 'msg':
      case 'state':
        return this._event(f);
      case 'eph':
        return this.emit('ephemeral', { user: f.u as string | undefined, conn: f.c as string | undefined, data: f.d });
      case 'pres':
        return this._presFrame(f);
      case 'left': {
        const code = f.code as number;
        const err = new RoomdError(code, f.msg as string, this.name);
        this.status = 'idle';
        this._jgen++;
        if (code < 100) {
          // room moved, owner unavailable...: rejoin and resume
          this._tJoin = setTimeout(() => this._up(), code === 9 ? 0 : this._c._backoff(this._attempt++));
          return;
        }
        this._close(err);
        this.emit('left', err);
        this.emit('error', err);
      }
    }
  }
}
