// Incremental detokenizing: turns a stream of token ids into text deltas that never split a UTF-8
// character and never contain special tokens, decoding only a small window per token.
import type { Tokenizer } from "./tokenizer.ts";

export interface Detokenizer {
  /** Adds one generated id; returns the text it completes (often "", e.g. inside a multi-byte character). */
  push(tokenId: number): string;
  /** Returns whatever is still held back (call once at the end of generation). */
  flush(): string;
}

/** Bytes of one character span at most 4 tokens in byte-level vocabularies; past this, emit as decoded. */
const MAX_HELD_TOKENS = 8;
const REPLACEMENT = "\uFFFD";

/**
 * Creates a detokenizer for one generation. It keeps a window of recent ids: `prefix` tokens give
 * the decoder context (SentencePiece drops a leading space at the start of a decode), and text is
 * emitted only once the window's decode no longer ends in an incomplete character.
 */
export function createDetokenizer(tokenizer: Pick<Tokenizer, "decode" | "specialIds">): Detokenizer {
  let window: number[] = [];
  let prefixEnd = 0; // window[0, prefixEnd) was emitted and serves as context
  const decode = (ids: number[]): string => tokenizer.decode(ids, { skipSpecial: true });

  const emit = (force: boolean): string => {
    if (window.length === prefixEnd) return "";
    const before = decode(window.slice(0, prefixEnd));
    const text = decode(window);
    const held = window.length - prefixEnd;
    if (!force && held < MAX_HELD_TOKENS && (text.length <= before.length || text.endsWith(REPLACEMENT))) return "";
    // Keep only the newest emitted token as context for the next window.
    window = window.slice(-1);
    prefixEnd = window.length;
    return text.slice(before.length);
  };

  return {
    push(tokenId) {
      if (tokenizer.specialIds.has(tokenId)) return "";
      window.push(tokenId);
      return emit(false);
    },
    flush() {
      return emit(true);
    },
  };
}
