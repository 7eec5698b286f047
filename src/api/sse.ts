// Server-sent events framing: `data: <json>` per object, `: keep-alive` comments while the source is silent
// (long prefills), `data: [DONE]` at the end, and an error after the headers as `data: {"error":…}` then [DONE].
import { describeError } from "./errors.ts";

const encoder = new TextEncoder();
/** A comment frame: clients ignore it, proxies and idle timers see traffic. */
export const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");
/** OpenAI's end-of-stream marker. */
export const DONE = encoder.encode("data: [DONE]\n\n");

/** Headers of every event stream. */
export const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
  // Proxies such as nginx would otherwise hold tokens back in their buffers.
  "x-accel-buffering": "no",
} as const;

/** One `data:` frame holding `value` as JSON. */
export function sseData(value: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(value)}\n\n`);
}

export interface SseOptions {
  keepAliveMs: number;
  /** Called once when the client goes away before the end (the caller aborts the generation). */
  onCancel: () => void;
  /** How values, a late error and the end are written; OpenAI's framing when absent (Anthropic and Ollama differ). */
  framing?: StreamFraming;
}

/** The bytes of one streaming dialect. */
export interface StreamFraming {
  frame(value: unknown): Uint8Array;
  error(err: unknown): Uint8Array;
  /** Written after the last value (OpenAI's `[DONE]`); null: nothing. */
  done: Uint8Array | null;
  /** Written while the source is silent; null: nothing (NDJSON has no comments). */
  keepAlive: Uint8Array | null;
}

/** OpenAI's: `data: <json>` frames, `: keep-alive` comments, an error as a data frame, then `[DONE]`. */
export const OPENAI_FRAMING: StreamFraming = {
  frame: sseData,
  error: (err) => sseData(describeError(err).body),
  done: DONE,
  keepAlive: KEEP_ALIVE,
};

type Settled<T> = { ok: true; result: IteratorResult<T> } | { ok: false; error: unknown };

/** A byte stream of SSE frames pulled from `source`; `first` is a next() already in flight, if any. */
export function sseStream(
  source: AsyncIterator<unknown>,
  opts: SseOptions,
  first?: Promise<IteratorResult<unknown>>,
): ReadableStream<Uint8Array> {
  let pending: Promise<Settled<unknown>> | undefined = first ? settle(first) : undefined;
  let finished = false;
  const framing = opts.framing ?? OPENAI_FRAMING;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      pending ??= settle(source.next());
      let outcome = await raceTimer(pending, opts.keepAliveMs);
      while (outcome === "timeout" && framing.keepAlive === null) outcome = await raceTimer(pending, opts.keepAliveMs);
      if (outcome === "timeout") return controller.enqueue(framing.keepAlive ?? KEEP_ALIVE);
      pending = undefined;
      if (outcome.ok && !outcome.result.done) return controller.enqueue(framing.frame(outcome.result.value));
      if (!outcome.ok) controller.enqueue(framing.error(outcome.error));
      finished = true;
      if (framing.done) controller.enqueue(framing.done);
      controller.close();
    },
    cancel() {
      if (finished) return;
      finished = true;
      opts.onCancel();
      // Close the source too, so generators run their `finally` even when parked at a yield.
      source.return?.().catch(() => undefined);
    },
  });
}

// --- internal ---

function settle<T>(promise: Promise<IteratorResult<T>>): Promise<Settled<T>> {
  return promise.then(
    (result) => ({ ok: true, result }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/** Resolve with `promise`, or "timeout" after `ms` (the timer is always cleared, so nothing lingers). */
export async function raceTimer<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
