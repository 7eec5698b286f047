// The progress deadline of a prepare: every stage node must show progress (a STATUS with a new phase or fraction)
// at least every `stallMs`, or its prepare fails with an error naming the node and the phase it stalled in. Separate
// from the total deadline, so a long download that keeps moving is never cut, and a silent peer never holds a
// request for hours.
import { NodeError } from "../errors.ts";
import type { StatusFields } from "./messages.ts";

export interface StallWatch {
  /** Rejects with E_PEER_TIMEOUT once `nodeId` goes `stallMs` without progress; never resolves. */
  until(nodeId: string): Promise<never>;
  /** A STATUS heard from any node; only a changed phase or fraction counts as progress. */
  progress(status: StatusFields): void;
  /** Stop watching `nodeId` (its prepare answered). */
  done(nodeId: string): void;
  /** Stop every timer. */
  stop(): void;
}

/** The timer functions the watch uses; tests pass a manual clock. */
export interface StallTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const REAL_TIMERS: StallTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export function createStallWatch(modelId: string, stallMs: number, timers: StallTimers = REAL_TIMERS): StallWatch {
  const watched = new Map<string, { timer?: unknown; last?: StatusFields; reject: (err: Error) => void }>();
  const arm = (nodeId: string) => {
    const w = watched.get(nodeId);
    if (!w) return;
    timers.clear(w.timer);
    w.timer = timers.set(() => {
      watched.delete(nodeId);
      w.reject(stalledError(modelId, nodeId, stallMs, w.last));
    }, stallMs);
  };
  return {
    until(nodeId) {
      return new Promise<never>((_, reject) => {
        watched.set(nodeId, { reject });
        arm(nodeId);
      });
    },
    progress(status) {
      const w = watched.get(status.nodeId);
      if (!w || status.modelId !== modelId) return;
      if (w.last && w.last.phase === status.phase && w.last.fraction === status.fraction) return;
      w.last = status;
      arm(status.nodeId);
    },
    done(nodeId) {
      timers.clear(watched.get(nodeId)?.timer);
      watched.delete(nodeId);
    },
    stop() {
      for (const w of watched.values()) timers.clear(w.timer);
      watched.clear();
    },
  };
}

/** "node b made no progress for 60 s in the download phase (40%) of preparing llama-3.2-1b; ..." */
export function stalledError(modelId: string, nodeId: string, stallMs: number, last?: StatusFields): NodeError {
  const phase = last
    ? `the ${last.phase} phase (${Math.floor(last.fraction * 100)}%)`
    : "the PREPARE phase (it never reported a status)";
  const seconds = stallMs >= 1000 ? `${Math.round(stallMs / 100) / 10} s` : `${stallMs} ms`;
  return new NodeError(
    "E_PEER_TIMEOUT",
    `node ${nodeId} made no progress for ${seconds} in ${phase} of preparing ${modelId}; check that node and its log (the deadline is --prepare-stall-ms)`,
  );
}
