// When a crashed runner is started again: at once after a first crash, then with a doubling delay, and not
// eagerly any more after a streak of crashes (the next call starts it). A start that completes ends the streak.

export interface RestartPolicyOptions {
  /** Crashes in a row after which the runner is no longer restarted on its own. Default 5. */
  maxEagerRestarts?: number;
  /** Delay before the start after the first crash of a streak; it doubles with each further crash. Default 100. */
  baseDelayMs?: number;
  /** Longest delay before a start. Default 5000. */
  maxDelayMs?: number;
}

export interface RestartPolicy {
  /** Records an unexpected exit; true when the runner should be restarted without waiting for a call. */
  crashed(): boolean;
  /** How long the next start waits first (0 outside a crash streak). */
  startDelayMs(): number;
  /** A start completed (HELLO and the shard back): the streak is over. */
  started(): void;
}

export function createRestartPolicy(opts: RestartPolicyOptions = {}): RestartPolicy {
  const maxEager = opts.maxEagerRestarts ?? 5;
  const baseMs = opts.baseDelayMs ?? 100;
  const maxMs = opts.maxDelayMs ?? 5000;
  let streak = 0;
  return {
    crashed: () => ++streak <= maxEager,
    startDelayMs: () => (streak > 0 ? Math.min(baseMs * 2 ** (streak - 1), maxMs) : 0),
    started: () => {
      streak = 0;
    },
  };
}
