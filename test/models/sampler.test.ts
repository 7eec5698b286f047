// makeSampler on MLX logits: greedy, seeded reproducibility, top_k / top_p limits, temperature spread.
import { describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { makeSampler } from "../../src/engine/sampler.ts";

const V = 2000;
/** Deterministic logits with a clear order: token (i*37 % V) gets score -i/40. */
function logitsFor(seed: number): { logits: mx.array; order: number[] } {
  const order = Array.from({ length: V }, (_, i) => (i * 37 + seed) % V);
  const values = new Array<number>(V);
  order.forEach((tok, rank) => (values[tok] = -rank / 40));
  return { logits: mx.array([values], mx.float32), order };
}

const draw = (sampler: (l: mx.array) => number, logits: mx.array, n: number) =>
  Array.from({ length: n }, () => sampler(logits));

describe("makeSampler", () => {
  test("temperature 0 is greedy: the argmax token", () => {
    for (const seed of [0, 5, 11]) {
      const { logits, order } = logitsFor(seed);
      expect(makeSampler({ temperature: 0, topP: 1, topK: 0 })(logits)).toBe(order[0]!);
    }
  });

  test("the same seed gives the same tokens and another seed gives others", () => {
    const { logits } = logitsFor(1);
    const params = { temperature: 1, topP: 1, topK: 0 };
    const a = draw(makeSampler({ ...params, seed: 42 }), logits, 30);
    const b = draw(makeSampler({ ...params, seed: 42 }), logits, 30);
    const c = draw(makeSampler({ ...params, seed: 43 }), logits, 30);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(new Set(a).size).toBeGreaterThan(5);
  });

  test("a sampler started at token index k takes the draws a fresh one takes from its k-th token on (failover replay)", () => {
    const { logits } = logitsFor(2);
    const params = { temperature: 1, topP: 0.9, topK: 0, seed: 7 };
    const whole = draw(makeSampler(params), logits, 40);
    for (const k of [1, 17, 39])
      expect(draw(makeSampler({ ...params, startIndex: k }), logits, 40 - k)).toEqual(whole.slice(k));
    expect(new Set(whole).size).toBeGreaterThan(5);
  });

  test("top_k 1 and a tiny top_p are greedy even at a high temperature", () => {
    const { logits, order } = logitsFor(3);
    expect(new Set(draw(makeSampler({ temperature: 2, topP: 1, topK: 1, seed: 1 }), logits, 20))).toEqual(
      new Set([order[0]!]),
    );
    expect(new Set(draw(makeSampler({ temperature: 2, topP: 1e-6, topK: 0, seed: 1 }), logits, 20))).toEqual(
      new Set([order[0]!]),
    );
  });

  test("top_k keeps only the k most likely tokens", () => {
    const { logits, order } = logitsFor(4);
    const seen = new Set(draw(makeSampler({ temperature: 5, topP: 1, topK: 3, seed: 9 }), logits, 200));
    expect(seen).toEqual(new Set(order.slice(0, 3)));
  });

  test("top_p keeps the smallest set of likely tokens whose mass reaches p", () => {
    const { logits, order } = logitsFor(6);
    const probs = mx.softmax(logits.reshape([-1]), 0).tolist() as number[];
    let mass = 0;
    let keep = 0;
    while (mass < 0.5) mass += probs[order[keep++]!]!;
    const seen = new Set(draw(makeSampler({ temperature: 1, topP: 0.5, topK: 0, seed: 2 }), logits, 200));
    for (const t of seen) expect(order.indexOf(t)).toBeLessThan(keep);
    expect(seen.size).toBeGreaterThan(keep / 2);
  });

  test("a nearly flat distribution falls back to the whole vocabulary for top_p", () => {
    // Tokens < 1000 lead by a hair: the first 1024 candidates hold ~51% of the mass, less than top_p.
    const values = Array.from({ length: V }, (_, i) => (i < 1000 ? 1e-3 : 0));
    const logits = mx.array([values], mx.float32);
    const tail = draw(makeSampler({ temperature: 1, topP: 0.9, topK: 0, seed: 5 }), logits, 300).filter(
      (t) => t >= 1000,
    );
    expect(tail.length).toBeGreaterThan(100);
  });
});
