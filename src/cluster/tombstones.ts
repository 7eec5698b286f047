// Ids of requests that ended recently, so a message still in flight for one (a TENSOR racing an END)
// is dropped instead of creating fresh state that nobody would ever free.
import type { RequestId } from "../ids.ts";

const DEFAULT_TTL_MS = 5 * 60_000;
const MAX_ENTRIES = 65_536;

export interface Tombstones {
  add(requestId: RequestId): void;
  has(requestId: RequestId): boolean;
  /** Forget ids older than the TTL. */
  prune(): void;
}

export function createTombstones(ttlMs = DEFAULT_TTL_MS): Tombstones {
  // A Map keeps insertion order, so the oldest ids are at the front.
  const ids = new Map<string, number>();
  return {
    add(requestId) {
      ids.delete(requestId);
      ids.set(requestId, Date.now());
      if (ids.size > MAX_ENTRIES) ids.delete(ids.keys().next().value!);
    },
    has: (requestId) => ids.has(requestId),
    prune() {
      const cutoff = Date.now() - ttlMs;
      for (const [id, at] of ids) {
        if (at >= cutoff) break;
        ids.delete(id);
      }
    },
  };
}
