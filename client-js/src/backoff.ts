// Reconnect delays: exponential backoff with full jitter.

export interface BackoffOptions {
  /** Cap of the first delay in ms. Default 500. */
  base?: number;
  /** Largest cap in ms. Default 30000. */
  max?: number;
}

/**
 * Delay before reconnect attempt `attempt` (0-based): uniform in
 * [0, min(max, base * 2^attempt)).
 */
export function backoff(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const cap = Math.min(o.max ?? 30000, (o.base ?? 500) * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
