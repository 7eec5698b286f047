// Per-request token sampling on the last stage: greedy at temperature 0, else temperature + top_k + top_p
// with a seeded JS PRNG over a small candidate set pulled out of MLX (a 128k vocab never becomes a JS array
// unless top_p needs more than CANDIDATES tokens, which only very flat distributions do).
import { core as mx } from "@frost-beta/mlx";
import type { SamplingParams } from "./types.ts";

/** Candidates pulled for nucleus sampling before falling back to the whole vocabulary. */
const CANDIDATES = 1024;

/** Picks the next token from last-position logits [1, V] or [V]. */
export type Sampler = (logits: mx.array) => number;

/** mulberry32: tiny, fast, good enough for sampling, and identical for identical seeds. */
export function makeRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
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
  const rand = makeRng(params.seed ?? Math.floor(Math.random() * 2 ** 32));
  return (logits) => {
    const logp = logSoftmax(mx.divide(logits.reshape([-1]).astype(mx.float32), temperature));
    const V = logp.size;
    const k = topK > 0 && topK < V ? topK : topP < 1 ? Math.min(V, CANDIDATES) : V;
    let cand = k < V ? candidates(logp, k) : undefined;
    // Nucleus over a truncated list is exact only if the list already holds top_p of the mass.
    if (cand && !(topK > 0 && topK < V) && sum(cand.probs) < topP) cand = undefined;
    cand ??= { ids: Array.from({ length: V }, (_, i) => i), probs: (mx.exp(logp).tolist() as number[]) };
    return pick(nucleus(cand, topP), rand());
  };
}

interface Candidates {
  ids: number[];
  probs: number[];
}

function logSoftmax(x: mx.array): mx.array {
  return mx.subtract(x, mx.logsumexp(x, 0, true));
}

function candidates(logp: mx.array, k: number): Candidates {
  const idx = mx.argpartition(mx.negative(logp), k - 1, 0).index(mx.Slice(0, k));
  const probs = mx.exp(mx.take(logp, idx, 0));
  mx.eval(idx, probs);
  return { ids: idx.tolist() as number[], probs: probs.tolist() as number[] };
}

/** Keeps the most likely tokens whose mass (renormalized over the candidates) reaches topP. */
function nucleus(c: Candidates, topP: number): Candidates {
  const order = c.ids.map((_, i) => i).sort((a, b) => c.probs[b]! - c.probs[a]! || c.ids[a]! - c.ids[b]!);
  const total = sum(c.probs);
  const ids: number[] = [];
  const probs: number[] = [];
  let mass = 0;
  for (const i of order) {
    ids.push(c.ids[i]!);
    probs.push(c.probs[i]!);
    mass += c.probs[i]! / total;
    if (topP < 1 && mass >= topP) break;
  }
  return { ids, probs };
}

function pick(c: Candidates, u: number): number {
  let target = u * sum(c.probs);
  for (let i = 0; i < c.ids.length; i++) {
    target -= c.probs[i]!;
    if (target < 0) return c.ids[i]!;
  }
  return c.ids[c.ids.length - 1]!;
}

function sum(xs: number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
