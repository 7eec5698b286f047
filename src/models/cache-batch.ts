// Decode of several requests in one forward. Each request keeps its own KVCache (their lengths differ);
// every projection and MLP runs once over [B,1,H] (the weight reads are what decode pays for), and
// cachedAttention splits the batch per row for RoPE at that row's offset, the cache append and SDPA.
//
// Why per-request caches and per-row attention rather than one padded [B, nKv, maxT, hd] cache with a mask:
// a row computes exactly what it computes alone (same cache, same mask), requests join and leave between steps
// without copying anyone's cache, and memory is what each context needs, not B x the longest. The cost, measured
// by bench/batch-attention.ts (8 requests, random f32 Llama 8x1024, 2-core x86): a decode step over per-request
// caches takes 1.07-1.11x the best case of one shared cache (all rows the same length, so no padding and no mask).
import { core as mx } from "@frost-beta/mlx";
import type { KVCache } from "./kv-cache.ts";

export class CacheBatch {
  constructor(readonly caches: readonly KVCache[]) {}
}

/** What an attention layer writes to: one request's cache, or a batch of them (decode only, L = 1). */
export type AttentionCache = KVCache | CacheBatch;

/** Runs `attend` for row b of q/k/v [B, heads, 1, hd] with caches[b]; concatenates the rows back. */
export function perRowAttention(
  batch: CacheBatch,
  q: mx.array,
  k: mx.array,
  v: mx.array,
  attend: (q: mx.array, k: mx.array, v: mx.array, cache: KVCache) => mx.array,
): mx.array {
  const row = (t: mx.array, b: number) => t.index(mx.Slice(b, b + 1));
  const outs = batch.caches.map((cache, b) => attend(row(q, b), row(k, b), row(v, b), cache));
  return outs.length === 1 ? outs[0]! : mx.concatenate(outs, 0);
}
