// Token ids → text deltas: incremental detokenizing, stop strings (never emitted, even when split across
// tokens), finish reason and usage. The layer between the coordinator's token loop and the HTTP API.
import type { FinishReason, GenerationEvent } from "./types.ts";

/** The slice of the tokenizer's incremental detokenizer this layer needs. */
export interface Detokenizer {
  /** Text completed by this token ("" while a character or word is still incomplete; special tokens give ""). */
  push(tokenId: number): string;
  /** Whatever is still held back. */
  flush(): string;
}

export interface TextStreamOptions {
  detokenizer: Detokenizer;
  stop: string[];
  eosIds: number[];
  maxTokens: number;
  promptTokens: number;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string (held back until decided). */
export function heldBackLength(text: string, stop: string[]): number {
  let held = 0;
  for (const s of stop) {
    for (let n = Math.min(s.length - 1, text.length); n > held; n--) {
      if (text.endsWith(s.slice(0, n))) {
        held = n;
        break;
      }
    }
  }
  return held;
}

/** Index of the earliest stop string in `text`, or -1. */
export function firstStop(text: string, stop: string[]): number {
  let at = -1;
  for (const s of stop) {
    const i = s.length > 0 ? text.indexOf(s) : -1;
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** Stream text events for a token stream; returning early (stop string) ends the token stream too. */
export async function* streamText(
  tokens: AsyncIterable<number>,
  opts: TextStreamOptions,
): AsyncGenerator<GenerationEvent> {
  const { detokenizer, stop, eosIds } = opts;
  let pending = "";
  let completionTokens = 0;
  let finishReason: FinishReason = "length";
  let stopSequence: string | undefined;
  // Which stop string ended the text (Anthropic's stop_sequence names it).
  const stoppedAt = (at: number) => {
    finishReason = "stop";
    stopSequence = stop.find((s) => s.length > 0 && pending.startsWith(s, at));
  };
  const done = (): GenerationEvent => ({
    kind: "done",
    finishReason,
    usage: { promptTokens: opts.promptTokens, completionTokens },
    ...(stopSequence === undefined ? {} : { stopSequence }),
  });

  for await (const token of tokens) {
    completionTokens++;
    if (eosIds.includes(token)) {
      finishReason = "stop";
      break;
    }
    pending += detokenizer.push(token);
    const at = firstStop(pending, stop);
    if (at >= 0) {
      if (at > 0) yield { kind: "text", text: pending.slice(0, at) };
      stoppedAt(at);
      yield done();
      return;
    }
    const emit = pending.length - heldBackLength(pending, stop);
    if (emit > 0) {
      yield { kind: "text", text: pending.slice(0, emit) };
      pending = pending.slice(emit);
    }
  }
  pending += detokenizer.flush();
  const at = firstStop(pending, stop);
  if (at >= 0) {
    stoppedAt(at);
    pending = pending.slice(0, at);
  }
  if (pending.length > 0) yield { kind: "text", text: pending };
  yield done();
}
