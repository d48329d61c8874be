// Public types of the SDK.

/** A connection in a room's presence. */
export interface Member {
  /** Connection id. */
  conn: string;
  /** User id (token `sub`), absent for anonymous connections. */
  user?: string;
  /** Presence data set by the member. */
  data?: unknown;
  /** The `info` claim of the member's token, when it has one. */
  info?: unknown;
}

/** A durable message of a room's log. */
export interface Message {
  /** Sequence number within the room's epoch. */
  seq: number;
  user?: string;
  conn?: string;
  data: unknown;
  /** Unix time in ms when the room logged it. */
  ts: number;
}

/** A change of a room's state map; `snapshot` when the whole map was replaced. */
export interface StateChange {
  /** The changed key; absent for a snapshot. */
  key?: string;
  value?: unknown;
  /** True when the key was deleted. */
  deleted?: boolean;
  /** True when the whole map was replaced by a snapshot (on join or reset). */
  snapshot?: boolean;
  seq: number;
  user?: string;
  conn?: string;
  ts?: number;
}

/**
 * A change of a room's presence. On (re)join, the difference with what was known.
 * One server frame may bring the changes of several members at once.
 */
export interface PresenceChange {
  join: Member[];
  /** Members that left, as they were last known. */
  leave: Member[];
  update: Member[];
  /**
   * In large-room mode: the room's member count, now changed. The room then
   * sends the count instead of every change, and `room.presence` is a sample.
   */
  count?: number;
}

/** An ephemeral message: never logged, never replayed. */
export interface Ephemeral {
  user?: string;
  conn?: string;
  data: unknown;
}

/** Continuity was lost: events may have been missed. The state map was replaced. */
export interface ResetInfo {
  epoch: string;
  previousEpoch?: string;
  /** The room's seq after the reset. */
  seq: number;
}

export type Status = 'connecting' | 'connected' | 'disconnected';

/** Details of a status change. */
export interface StatusDetail {
  /**
   * Why the connection ended: the roomd code when the server said (bye, or a
   * close code 4000 + code), else the WebSocket close code.
   */
  code?: number;
  msg?: string;
  /** True when the client will not reconnect by itself. */
  terminal?: boolean;
  /** Milliseconds until the next attempt, when one is scheduled. */
  retryIn?: number;
}

/** The part of the WebSocket API the client uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
