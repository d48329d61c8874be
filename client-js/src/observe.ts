// Read-only observers over SSE (PROTOCOL §3), through EventSource.
import type { Member } from './types.js';

/** A logged event as carried by SSE: a message or a state change. */
export interface LogEvent {
  type: 'message' | 'state';
  seq: number;
  user?: string;
  conn?: string;
  data?: unknown;
  key?: string;
  deleted?: boolean;
  ts?: number;
}

export type ObserveEvent =
  | {
      type: 'snapshot';
      room: string;
      epoch: string;
      seq: number;
      presence: Member[];
      /** Large-room mode: the number of members (`presence` is then a sample). */
      count?: number;
      state: Record<string, unknown>;
      log: LogEvent[];
    }
  | { type: 'message'; room: string; seq: number; user?: string; conn?: string; data: unknown; ts: number }
  | { type: 'state'; room: string; seq: number; key: string; data?: unknown; deleted: boolean; ts: number }
  | {
      type: 'presence';
      room: string;
      join: Member[];
      leave: string[];
      update: Member[];
      /** Large-room mode: the room's member count, sent instead of the changes. */
      count?: number;
      /** The room left large-room mode: every member (replaces the list). */
      all?: Member[];
    }
  | { type: 'ephemeral'; room: string; user?: string; conn?: string; data: unknown }
  | { type: 'bye'; code: number; msg: string };

export interface ObserveOptions {
  /** Observer token, sent as `?token=` (EventSource cannot set headers). */
  token?: string;
  /**
   * Called for a fresh token when the stream ends with `bye` token_expired
   * (the token's exp plus the server's leeway); the stream then reopens with
   * it and resumes at the last event. Without it such a stream is closed: a
   * retry with the old token would be refused.
   */
  getToken?: () => string | Promise<string>;
  /** Called for every event, parsed. */
  onEvent: (e: ObserveEvent) => void;
  /** Called when the stream opens, is retrying, or is closed for good. */
  onStatus?: (s: 'open' | 'reconnecting' | 'closed') => void;
  /** Recent messages wanted in the snapshot (`?h=`). */
  h?: number;
  /** Also receive ephemeral messages. */
  ephemeral?: boolean;
  /** Resume after this event id (`{epoch}:{seq}`). */
  since?: string;
  /** Send cookies cross-origin (EventSource `withCredentials`). */
  withCredentials?: boolean;
  /** EventSource constructor; defaults to the global one. */
  EventSource?: EventSourceConstructor;
}

interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  addEventListener(type: string, fn: (ev: { data: string; lastEventId?: string }) => void): void;
  close(): void;
}
type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** A running observer. */
export interface Observer {
  /** Id of the last durable event seen (`{epoch}:{seq}`). */
  readonly lastEventId: string;
  close(): void;
}

/** bye code: the stream's token expired (PROTOCOL §3.8). */
const TOKEN_EXPIRED = 4;

const TYPES = ['snapshot', 'message', 'state', 'presence', 'ephemeral', 'bye'] as const;

type Raw = Record<string, unknown>;
const pick = (o: Raw, long: string, short: string): unknown => (long in o ? o[long] : o[short]);

const asMember = (m: unknown): Member => {
  const o = (m ?? {}) as Raw;
  return {
    conn: pick(o, 'conn', 'c') as string,
    user: pick(o, 'user', 'u') as string | undefined,
    data: pick(o, 'data', 'd'),
    info: pick(o, 'info', 'i'),
  };
};

const asLog = (x: unknown): LogEvent => {
  const o = x as Raw;
  const t = (o.type ?? o.t) as string | undefined;
  const key = pick(o, 'key', 'k') as string | undefined;
  const data = pick(o, 'data', 'd');
  const isState = t === 'state' || (t === undefined && key !== undefined);
  return {
    type: isState ? 'state' : 'message',
    seq: pick(o, 'seq', 's') as number,
    user: pick(o, 'user', 'u') as string | undefined,
    conn: pick(o, 'conn', 'c') as string | undefined,
    data,
    ts: o.ts as number | undefined,
    ...(isState ? { key, deleted: (o.deleted as boolean | undefined) ?? data == null } : {}),
  };
};

/** Builds the events URL of a room. */
export function eventsURL(baseUrl: string, room: string, o: Omit<ObserveOptions, 'onEvent'> = {}): string {
  const loc = (globalThis as { location?: { href: string } }).location?.href;
  const u = new URL('/v1/rooms/' + room + '/events', new URL(baseUrl || '/', loc));
  u.protocol = u.protocol.replace(/^ws/, 'http');
  if (o.h) u.searchParams.set('h', String(o.h));
  if (o.ephemeral) u.searchParams.set('ephemeral', '1');
  if (o.since) u.searchParams.set('since', o.since);
  if (o.token) u.searchParams.set('token', o.token);
  return u.href;
}

/** Parses one SSE event into its typed form (normalizing member and log shapes). */
export function parseEvent(type: string, data: string): ObserveEvent {
  const o = JSON.parse(data) as Raw;
  switch (type) {
    case 'snapshot':
      return {
        ...(o as object),
        type,
        presence: ((o.presence ?? []) as unknown[]).map(asMember),
        state: (o.state ?? {}) as Record<string, unknown>,
        log: ((o.log ?? []) as unknown[]).map(asLog),
      } as ObserveEvent;
    case 'presence':
      return {
        type,
        room: o.room as string,
        join: ((o.join ?? []) as unknown[]).map(asMember),
        leave: ((o.leave ?? []) as unknown[]).map((x) => (typeof x === 'object' && x ? asMember(x).conn : (x as string))),
        update: ((o.update ?? o.upd ?? []) as unknown[]).map(asMember),
        ...(typeof o.count === 'number' ? { count: o.count } : {}),
        ...(Array.isArray(o.all) ? { all: (o.all as unknown[]).map(asMember) } : {}),
      };
    case 'state':
      return { ...(o as object), type, deleted: (o.deleted as boolean | undefined) ?? o.data == null } as ObserveEvent;
    default:
      return { ...(o as object), type } as ObserveEvent;
  }
}

/**
 * Observes a room over SSE. EventSource reconnects by itself and resumes with
 * Last-Event-ID; a `bye` with a terminal code (>= 500) closes the stream, and
 * `bye` token_expired reopens it with a token from `getToken` (else closes it).
 */
export function observe(baseUrl: string, room: string, o: ObserveOptions): Observer {
  const ES = o.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  if (!ES) throw new Error('roomd: no EventSource; pass { EventSource }');
  let last = o.since ?? '';
  let closed = false;
  let es: EventSourceLike | undefined;
  const close = () => {
    if (closed) return;
    closed = true;
    es?.close();
    o.onStatus?.('closed');
  };
  const open = (token: string | undefined) => {
    const cur = new ES(eventsURL(baseUrl, room, { ...o, token, since: last || undefined }), { withCredentials: !!o.withCredentials });
    es = cur;
    const live = () => !closed && es === cur;
    cur.onopen = () => live() && o.onStatus?.('open');
    cur.onerror = () => live() && o.onStatus?.(cur.readyState === 2 ? 'closed' : 'reconnecting');
    for (const t of TYPES) {
      cur.addEventListener(t, (ev) => {
        if (!live()) return;
        if (ev.lastEventId) last = ev.lastEventId;
        let e: ObserveEvent;
        try {
          e = parseEvent(t, ev.data);
        } catch {
          return;
        }
        o.onEvent(e);
        if (e.type !== 'bye') return;
        if (e.code >= 500) close();
        else if (e.code === TOKEN_EXPIRED) renew(cur);
      });
    }
  };
  // The stream's token expired: EventSource would retry with it and be
  // refused for good, so this stream ends here and a fresh one resumes.
  const renew = (cur: EventSourceLike) => {
    cur.close();
    const get = o.getToken;
    if (!get) return close();
    o.onStatus?.('reconnecting');
    Promise.resolve()
      .then(get)
      .then(
        (tok) => !closed && open(tok),
        () => close(),
      );
  };
  open(o.token);
  return {
    get lastEventId() {
      return last;
    },
    close,
  };
}
