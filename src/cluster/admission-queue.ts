// Admission on the coordinator (issue 14 part 4): at most `limit` requests run at once (the engine's live limit),
// the next ones wait in a bounded FIFO queue, and only a request that finds the queue full is refused
// (E_CAPACITY → HTTP 429 with Retry-After). Optionally each request also carries a cost (its KV-cache bytes) and
// the running costs stay within a budget, so a burst of long contexts waits instead of failing mid-generation.
// Pure logic with timers: no transport, no engine.
import { NodeError } from "../errors.ts";

export interface AdmissionOptions {
  /** Requests running at once. */
  limit: number;
  /** Requests waiting beyond `limit`; one more is refused with E_CAPACITY. 0: no queue. */
  queueSize: number;
  /** Longest wait in the queue; past it the request fails with E_CAPACITY. */
  waitMs: number;
  /** Sum of the costs of running requests may not pass this (KV-cache bytes); undefined: costs are not counted. */
  budget?: number;
}

/** A running request's slot; release() is idempotent and lets the next queued request start. */
export interface AdmissionTicket {
  release(): void;
}

/** What GET /debug/state and STATUS show of admission. */
export interface AdmissionStats {
  running: number;
  queued: number;
  /** Most requests queued at once since the node started. */
  peakQueued: number;
  limit: number;
  queueSize: number;
  /** Requests refused because the queue was full (or their wait ran out). */
  refused: number;
  /** Cost held by running requests (KV bytes); present with a budget. */
  reserved?: number;
  budget?: number;
}

export interface AdmissionQueue {
  /**
   * A slot for one request, now or once the requests queued before it got theirs (FIFO).
   * @throws NodeError E_CAPACITY when the queue is full or the wait passed `waitMs`; E_CANCELLED when `signal` aborts
   */
  acquire(signal: AbortSignal, cost?: number): Promise<AdmissionTicket>;
  stats(): AdmissionStats;
  /** Called after every change of running or queued (a load report to peers). Returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

interface Waiter {
  cost: number;
  grant(ticket: AdmissionTicket): void;
}

export function createAdmissionQueue(opts: AdmissionOptions): AdmissionQueue {
  const limit = Math.max(1, Math.floor(opts.limit));
  const queueSize = Math.max(0, Math.floor(opts.queueSize));
  const queue: Waiter[] = [];
  const listeners = new Set<() => void>();
  let running = 0;
  let reserved = 0;
  let peakQueued = 0;
  let refused = 0;

  const changed = () => {
    for (const l of listeners) l();
  };

  /** A request fits when a slot is free and its cost fits the budget; alone, it always fits (or it never would). */
  const fits = (cost: number) =>
    running < limit && (opts.budget === undefined || running === 0 || reserved + cost <= opts.budget);

  function start(cost: number): AdmissionTicket {
    running++;
    reserved += cost;
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        running--;
        reserved -= cost;
        pump();
        changed();
      },
    };
  }

  /** Starts queued requests from the head while they fit; the head waits for room, those behind it wait too. */
  function pump(): void {
    while (queue.length > 0 && fits(queue[0]!.cost)) {
      const w = queue.shift()!;
      w.grant(start(w.cost));
    }
  }

  function refuse(message: string): NodeError {
    refused++;
    return new NodeError("E_CAPACITY", message);
  }

  return {
    acquire(signal, cost = 0) {
      if (signal.aborted) return Promise.reject(new NodeError("E_CANCELLED", "cancelled before admission"));
      if (queue.length === 0 && fits(cost)) {
        const ticket = start(cost);
        changed();
        return Promise.resolve(ticket);
      }
      if (queue.length >= queueSize) {
        return Promise.reject(
          refuse(`${running} requests running (limit ${limit}) and ${queue.length} queued (--queue-size ${queueSize})`),
        );
      }
      return new Promise<AdmissionTicket>((resolve, reject) => {
        const leave = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          const at = queue.indexOf(waiter);
          if (at >= 0) queue.splice(at, 1);
          // The head may have been what held the others back (its cost did not fit yet).
          if (at === 0) pump();
          changed();
        };
        const onAbort = () => {
          leave();
          reject(new NodeError("E_CANCELLED", "cancelled while queued for admission"));
        };
        const timer = setTimeout(() => {
          leave();
          reject(refuse(`waited ${opts.waitMs} ms in the admission queue without a free slot`));
        }, opts.waitMs);
        const waiter: Waiter = {
          cost,
          grant(ticket) {
            clearTimeout(timer);
            signal.removeEventListener("abort", onAbort);
            resolve(ticket);
          },
        };
        signal.addEventListener("abort", onAbort, { once: true });
        queue.push(waiter);
        peakQueued = Math.max(peakQueued, queue.length);
        changed();
      });
    },
    stats: () => ({
      running,
      queued: queue.length,
      peakQueued,
      limit,
      queueSize,
      refused,
      ...(opts.budget === undefined ? {} : { reserved, budget: opts.budget }),
    }),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
