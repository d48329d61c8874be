// Frames on the wire: msgpack maps, several of them concatenated in one
// WebSocket message (PROTOCOL §2).
import { Encoder, decodeMulti } from '@msgpack/msgpack';

/** One protocol frame: `t` is its type; the other keys depend on it. */
export interface Frame {
  t: string;
  [key: string]: unknown;
}

const encoder = new Encoder({ ignoreUndefined: true });

/** Encodes one frame to msgpack. Keys whose value is `undefined` are left out. */
export function encodeFrame(f: Frame): Uint8Array {
  return encoder.encode(f);
}

/** Concatenates already encoded frames into one message. */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  n = 0;
  for (const p of parts) {
    out.set(p, n);
    n += p.length;
  }
  return out;
}

/** Encodes frames into one message. */
export function encodeFrames(frames: Frame[]): Uint8Array {
  return concat(frames.map(encodeFrame));
}

/** Decodes every frame of one message, in order. Throws on malformed input. */
export function decodeFrames(data: ArrayBuffer | ArrayBufferView): Frame[] {
  const out: Frame[] = [];
  for (const f of decodeMulti(data as ArrayBuffer)) {
    if (!f || typeof f !== 'object' || typeof (f as Frame).t !== 'string') throw new Error('roomd: frame without t');
    out.push(f as Frame);
  }
  return out;
}
