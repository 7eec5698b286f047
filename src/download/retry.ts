// When and how long to retry a download: transient failures (network, 5xx, 429, stalls) back off
// exponentially; answers that will not change (401, 403, 404, a full disk) fail at once.
import { isNodeError, NodeError } from "../errors.ts";

export interface RetryPolicy {
  /** Failures in a row without new bytes before giving up (a try that made progress resets the count). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No byte for this long → the connection is abandoned and the file resumed. */
  stallTimeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 500, maxDelayMs: 15_000, stallTimeoutMs: 30_000 };

/** Delay before retry number `failure` (1-based): exponential with jitter, capped. */
export function backoffMs(policy: RetryPolicy, failure: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failure - 1));
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/** A failure worth retrying: anything but a NodeError (network errors, dropped bodies) or a transient one. */
export function isTransient(err: unknown): boolean {
  if (!isNodeError(err)) return true;
  return err instanceof TransientError;
}

/** A NodeError E_DOWNLOAD that a retry may cure (HTTP 5xx/429, stall, short body). */
export class TransientError extends NodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("E_DOWNLOAD", message, options);
  }
}
