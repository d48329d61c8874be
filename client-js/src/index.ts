// roomd JavaScript SDK: realtime rooms over WebSocket, observers over SSE.
export { Client, VERSION, wsURL, tokenExpiry, type ClientOptions, type ClientEvents } from './client.js';
export { Room, newKey, type RoomOptions, type RoomEvents, type RoomStatus, type OpOptions } from './room.js';
export { observe, eventsURL, parseEvent, type ObserveOptions, type ObserveEvent, type Observer, type LogEvent } from './observe.js';
export { RoomdError, codeNames, isTerminal, isRetryable, OVERLOADED, DISCONNECTED, TIMEOUT, CLOSED } from './errors.js';
export { backoff, type BackoffOptions } from './backoff.js';
export { encodeFrames, decodeFrames, type Frame } from './codec.js';
export type * from './types.js';
