// Aggregate decode tokens/s of concurrent streams, as the batching benches count it: over the span in which every
// stream is decoding, from the last stream's first output (every prefill done) to the first stream's last. The
// streams' prefills run one after another, so a span from the first stream's first token would count the others'
// prefills as decode time.

/** One stream's outputs: when each arrived, and how many tokens each carries (a piece of text can hold several). */
export interface StreamArrivals {
  arrivals: number[];
  tokensPerArrival: number;
}

/** Tokens/s of all streams together over the span in which all of them decode. @throws when there is none */
export function allDecodingRate(streams: StreamArrivals[]): number {
  const from = Math.max(...streams.map((s) => s.arrivals[0] ?? Number.POSITIVE_INFINITY));
  const to = Math.min(...streams.map((s) => s.arrivals[s.arrivals.length - 1] ?? Number.NEGATIVE_INFINITY));
  if (!(to > from)) throw new Error(`${streams.length} streams never all decoded at once: raise --decode`);
  let tokens = 0;
  for (const s of streams) tokens += s.tokensPerArrival * s.arrivals.filter((t) => t > from && t <= to).length;
  return tokens / ((to - from) / 1000);
}
