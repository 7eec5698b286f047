// Poll a condition until it holds or a deadline passes: tests wait for states, never for fixed sleeps.

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Poll period (default 20 ms). */
  intervalMs?: number;
  /** Words for the timeout message: "timed out after 10000 ms waiting for <what>". */
  what?: string;
}

/** Resolve with the first truthy value `condition` returns; a throwing condition counts as "not yet". */
export async function waitFor<T>(condition: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError
        ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`
        : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? "a condition"}${why}`);
    }
    await Bun.sleep(opts.intervalMs ?? 20);
  }
}
