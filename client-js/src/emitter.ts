// A minimal typed event emitter.

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export class Emitter<E extends { [K in keyof E]: (...args: any[]) => void }> {
  private _l: { [K in keyof E]?: Set<E[K]> } = {};

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: E[K]): () => void {
    (this._l[event] ??= new Set()).add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener. */
  off<K extends keyof E>(event: K, fn: E[K]): void {
    this._l[event]?.delete(fn);
  }

  /** Calls the listeners. A listener that throws does not stop the others; its error is rethrown asynchronously. */
  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this._l[event];
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        queueMicrotask(() => {
          throw e;
        });
      }
    }
  }
}
