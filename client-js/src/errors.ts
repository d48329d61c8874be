// Wire codes (PROTOCOL §2 "Codes") and the SDK's error type.

/** Names of the wire codes, shared by `err`, `left` and `bye`. */
export const codeNames: Record<number, string> = {
  0: 'normal', 1: 'shutdown', 2: 'slow_consumer', 3: 'no_pong', 4: 'token_expired',
  5: 'rate_limited', 6: 'unavailable', 7: 'overloaded', 8: 'internal', 9: 'room_moved',
  100: 'bad_request', 101: 'unknown_type', 102: 'invalid_room', 103: 'too_large',
  104: 'not_joined', 105: 'already_joined', 106: 'room_full', 107: 'forbidden', 108: 'limit',
  110: 'denied',
  500: 'bad_protocol', 501: 'unauthorized', 502: 'unsupported_version', 503: 'kicked',
  504: 'too_many_connections',
  [-1]: 'disconnected', [-2]: 'timeout', [-3]: 'closed',
};

/** The connection was lost before the reply came (SDK-local code). */
export const DISCONNECTED = -1;
/** The operation did not complete in time (SDK-local code). */
export const TIMEOUT = -2;
/** The client or room was closed by the application (SDK-local code). */
export const CLOSED = -3;

/** Codes of 500 and above are terminal: do not reconnect without user action. */
export const isTerminal = (code: number): boolean => code >= 500;

/** An error carrying a wire code (or one of the SDK-local negative codes). */
export class RoomdError extends Error {
  /** The wire code, e.g. 107 for forbidden; negative for SDK-local conditions. */
  readonly code: number;
  /** The room the error is about, when there is one. */
  readonly room?: string;
  constructor(code: number, msg?: string, room?: string) {
    super(`${codeNames[code] ?? 'error ' + code}${msg ? ': ' + msg : ''}`);
    this.name = 'RoomdError';
    this.code = code;
    this.room = room;
  }
}
