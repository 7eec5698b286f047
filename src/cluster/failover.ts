// Failover of a running request: when its plan breaks (a stage went down, a stage lost its shard), plan again on
// the nodes still up, prepare that plan and replay the prompt plus every token already streamed as one prefill,
// so the token stream the client reads goes on without a gap, a duplicate or a restart. Pure control flow: the
// service gives it how to run an attempt, how to plan and how to prepare.
import { NodeError, errorCode, type ErrorCode } from "../errors.ts";
import type { Plan } from "./messages.ts";

export interface FailoverLimits {
  /** Failovers one request may take; the next failure reaches the client (0: never fail over). */
  maxFailovers: number;
  /** Longest one recovery may take, from the failure to the next token; beyond it the request fails with E_TIMEOUT. */
  recoveryMs: number;
}

export const DEFAULT_FAILOVER_LIMITS: FailoverLimits = { maxFailovers: 3, recoveryMs: 120_000 };

/** One run of a request on one plan; `startIndex` is the index of the first token it samples. */
export interface Attempt {
  plan: Plan;
  tokens: number[];
  maxTokens: number;
  startIndex: number;
}

/** How long each part of one recovery took (ms), for the log line and the benchmark. */
export interface Recovery {
  failovers: number;
  error: NodeError;
  from: Plan;
  to: Plan;
  /** Failure seen → new plan computed. */
  replanMs: number;
  /** New plan → every stage loaded. */
  loadMs: number;
  /** Replay sent → first new token. */
  replayMs: number;
  /** Tokens replayed beyond the prompt. */
  replayed: number;
}

export interface FailoverDeps {
  /** Run one attempt; aborting `signal` ends it on every stage. */
  run(attempt: Attempt, signal: AbortSignal): AsyncGenerator<number>;
  /** A plan over the nodes up now. @throws E_MODEL_TOO_BIG when the survivors cannot hold the model */
  replan(broken: Plan, error: NodeError, deadlineMs: number): Promise<Plan>;
  /** Every stage of `plan` loaded. */
  prepare(plan: Plan): Promise<void>;
  /** The plan broke and a recovery starts (the model is degraded). */
  onBroken?(plan: Plan, error: NodeError): void;
  onRecovered?(recovery: Recovery): void;
}

/** Failures a new plan can cure: a node gone, a link cut, a stage whose shard or request state vanished. */
const RECOVERABLE = new Set<ErrorCode>([
  "E_PEER_DOWN",
  "E_PEER_TIMEOUT",
  "E_PEER_UNKNOWN",
  "E_RUNNER_CRASHED",
  "E_RUNNER",
  "E_MODEL_UNSUPPORTED",
  "E_REQUEST_UNKNOWN",
]);

export function canFailOver(err: unknown): boolean {
  return RECOVERABLE.has(errorCode(err));
}

/**
 * The tokens of one request, failing over onto a new plan up to `limits.maxFailovers` times. Throws the request's
 * NodeError when it cannot fail over (or E_TIMEOUT when a recovery outlasts `limits.recoveryMs`).
 */
export async function* failoverTokens(
  first: { plan: Plan; prompt: number[]; maxTokens: number },
  deps: FailoverDeps,
  limits: FailoverLimits,
  signal: AbortSignal,
): AsyncGenerator<number> {
  const streamed: number[] = [];
  let plan = first.plan;
  let failovers = 0;
  // Set while recovering: the deadline of the next token and the timings so far.
  let recovering: (Omit<Recovery, "replayMs" | "replayed"> & { deadline: number; replayAt: number }) | undefined;
  for (;;) {
    const attempt = new AbortController();
    const attemptSignal = AbortSignal.any([signal, attempt.signal]);
    const tokens = deps.run(
      {
        plan,
        tokens: [...first.prompt, ...streamed],
        maxTokens: first.maxTokens - streamed.length,
        startIndex: streamed.length,
      },
      attemptSignal,
    );
    try {
      for (;;) {
        const next = recovering
          ? await beforeDeadline(tokens.next(), recovering.deadline, () => attempt.abort())
          : await tokens.next();
        if (next.done) return;
        if (recovering) {
          const { deadline: _d, replayAt, ...timings } = recovering;
          deps.onRecovered?.({ ...timings, replayMs: performance.now() - replayAt, replayed: streamed.length });
          recovering = undefined;
        }
        streamed.push(next.value);
        yield next.value;
      }
    } catch (err) {
      if (signal.aborted) throw err;
      if (recovering && errorCode(err) === "E_TIMEOUT") throw timedOut(recovering.error, limits);
      if (!canFailOver(err) || failovers >= limits.maxFailovers) throw err;
      const from = plan;
      let error = err as NodeError;
      const started = performance.now();
      const deadline = started + limits.recoveryMs;
      // A recovery that fails for a curable reason (a node of the new plan went down too) tries again.
      for (;;) {
        failovers++;
        deps.onBroken?.(plan, error);
        try {
          plan = await beforeDeadline(deps.replan(plan, error, deadline), deadline);
          const planned = performance.now();
          await beforeDeadline(deps.prepare(plan), deadline);
          const loaded = performance.now();
          const replanMs = planned - started;
          recovering = {
            failovers,
            error,
            from,
            to: plan,
            replanMs,
            loadMs: loaded - planned,
            deadline,
            replayAt: loaded,
          };
          break;
        } catch (e) {
          if (signal.aborted) throw e;
          if (errorCode(e) === "E_TIMEOUT") throw timedOut(error, limits);
          if (!canFailOver(e) || failovers >= limits.maxFailovers) throw e;
          error = e as NodeError;
        }
      }
    } finally {
      attempt.abort();
      // A finished or failed generator returns at once; one parked at a yield runs its finally (END everywhere).
      await tokens.return(undefined).catch(() => undefined);
    }
  }
}

// --- internal ---

/** `promise`, or E_TIMEOUT at `deadline` (performance.now() time); `onTimeout` runs first. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number, onTimeout?: () => void): Promise<T> {
  const ms = Math.max(0, deadline - performance.now());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new NodeError("E_TIMEOUT", "recovery deadline"));
    }, ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function timedOut(cause: NodeError, limits: FailoverLimits): NodeError {
  return new NodeError(
    "E_TIMEOUT",
    `could not recover within ${limits.recoveryMs} ms (--recovery-ms) after: ${cause.message}`,
  );
}
