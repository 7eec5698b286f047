// Calls waiting for an answer, by id: each settles once (answer, error, deadline), and close() rejects the
// rest. Shared by the peer link (net), the runner client (engine) and the coordinator's token waits (cluster).

interface Entry<T, M> {
  resolve(value: T): void;
  reject(err: Error): void;
  timer?: ReturnType<typeof setTimeout>;
  meta: M;
}

export interface CallOptions<M> {
  /** Deadline of this call; none when undefined. */
  timeoutMs?: number;
  /**
   * What the deadline means. An Error rejects the call with it; undefined leaves it waiting (the caller acts,
   * e.g. kills the process that owes the answer, and that settles the call). Required with timeoutMs.
   */
  onTimeout?: () => Error | undefined;
  /** Per-call data the owner reads back with meta(id) (e.g. a progress listener). */
  meta?: M;
}

export class PendingCalls<K, T, M = undefined> {
  private readonly calls = new Map<K, Entry<T, M>>();
  private closedWith: Error | undefined;

  /** Waits for `id` to be settled; rejects at once when close() has been called. */
  add(id: K, opts: CallOptions<M> = {}): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<T>((resolve, reject) => {
      const entry: Entry<T, M> = { resolve, reject, meta: opts.meta as M };
      const { timeoutMs, onTimeout } = opts;
      if (timeoutMs !== undefined && onTimeout) {
        entry.timer = setTimeout(() => {
          const err = onTimeout();
          if (err && this.calls.get(id) === entry) this.reject(id, err);
        }, timeoutMs);
      }
      this.calls.set(id, entry);
    });
  }

  /** Settles `id` with its answer. False when no such call waits (late, unknown or already settled). */
  resolve(id: K, value: T): boolean {
    const entry = this.take(id);
    entry?.resolve(value);
    return entry !== undefined;
  }

  /** Fails `id`. False when no such call waits. */
  reject(id: K, err: Error): boolean {
    const entry = this.take(id);
    entry?.reject(err);
    return entry !== undefined;
  }

  /** Fails every waiting call with `err`; later calls may still be added. */
  rejectAll(err: Error): void {
    const entries = [...this.calls.values()];
    this.clear();
    for (const entry of entries) entry.reject(err);
  }

  /** Fails every waiting call and every later add() with `err`: the other side is gone for good. */
  close(err: Error): void {
    this.closedWith ??= err;
    this.rejectAll(err);
  }

  has(id: K): boolean {
    return this.calls.has(id);
  }

  meta(id: K): M | undefined {
    return this.calls.get(id)?.meta;
  }

  get size(): number {
    return this.calls.size;
  }

  private take(id: K): Entry<T, M> | undefined {
    const entry = this.calls.get(id);
    if (!entry) return undefined;
    this.calls.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  private clear(): void {
    for (const entry of this.calls.values()) clearTimeout(entry.timer);
    this.calls.clear();
  }
}
