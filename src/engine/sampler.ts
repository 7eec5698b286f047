// Per-request token sampling on the last stage: greedy at temperature 0, else temperature + top_k + top_p
// computed in MLX, with one uniform draw per token from a seeded JS PRNG (inverse CDF): nothing of a 128k
// vocabulary is copied into JS, and the same seed gives the same tokens.
import { core as mx } from "@frost-beta/mlx";
import type { SamplingParams } from "./types.ts";

/** Picks the next token from last-position logits [1, V] or [V]. */
export type Sampler = (logits: mx.array) => number;

/** Candidates tried for top_p alone: argpartition of 1024 costs ~5 ms on 128k logits, a full argsort ~28 ms. */
const NUCLEUS_CANDIDATES = 1024;

/** mulberry32's state advances by this constant per draw. */
const RNG_STEP = 0x6d2b79f5;

/**
 * mulberry32: tiny, fast, good enough for sampling, and identical for identical seeds. Its state after n draws is
 * seed + n·RNG_STEP, so `skip` draws are skipped in O(1): draw k is a function of the seed and k alone.
 */
export function makeRng(seed: number, skip = 0): () => number {
  let s = ((seed >>> 0) + Math.imul(skip >>> 0, RNG_STEP)) >>> 0;
  return () => {
    s = (s + RNG_STEP) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A sampler holding its own RNG state, so the same seed and logits give the same tokens. */
export function makeSampler(params: SamplingParams): Sampler {
  const { temperature, topP, topK } = params;
  if (!(temperature > 0)) return (logits) => Number(mx.argmax(logits.reshape([-1])).item());
  // One draw per sampled token: a request replayed after a failover starts at its token index.
  const rand = makeRng(params.seed ?? Math.floor(Math.random() * 2 ** 32), params.startIndex ?? 0);
  return (logits) => {
    const logp = logSoftmax(mx.divide(logits.reshape([-1]).astype(mx.float32), temperature));
    const V = logp.size;
    // Candidates in descending order when a filter needs the order; the whole vocabulary unsorted otherwise.
    let ids: mx.array | undefined;
    let p: mx.array;
    const k = topK > 0 && topK < V ? topK : topP < 1 && NUCLEUS_CANDIDATES < V ? NUCLEUS_CANDIDATES : 0;
    let idx = k ? mx.argpartition(mx.negative(logp), k - 1, 0).index(mx.Slice(0, k)) : undefined;
    // A nucleus over the top candidates is exact only if they already hold top_p of the mass.
    if (idx && k !== topK && Number(mx.sum(mx.exp(mx.take(logp, idx, 0))).item()) < topP) idx = undefined;
    if (idx) {
      const vals = mx.take(logp, idx, 0);
      const order = mx.argsort(mx.negative(vals));
      ids = mx.take(idx, order, 0);
      p = mx.exp(mx.take(vals, order, 0));
    } else if (topP < 1) {
      ids = mx.argsort(mx.negative(logp));
      p = mx.exp(mx.take(logp, ids, 0));
    } else {
      p = mx.exp(logp);
    }
    if (topP < 1) {
      // Keep each token whose more likely predecessors hold less than top_p of the (candidate) mass.
      const mass = mx.divide(mx.cumsum(p), mx.sum(p));
      p = mx.multiply(p, mx.less(mx.subtract(mass, mx.divide(p, mx.sum(p))), topP));
    }
    // Inverse CDF with one uniform draw from the request's own RNG.
    const cdf = mx.cumsum(p);
    const target = mx.multiply(cdf.index(mx.Slice(cdf.size - 1, cdf.size)), rand());
    const pos = mx.minimum(mx.sum(mx.lessEqual(cdf, target)), cdf.size - 1).astype(mx.int32);
    return Number((ids ? mx.take(ids, pos, 0) : pos).item());
  };
}

function logSoftmax(x: mx.array): mx.array {
  return mx.subtract(x, mx.logsumexp(x, 0, true));
}
