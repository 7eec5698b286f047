// One runner over every architecture: tiny random checkpoints written to disk and loaded through the real
// loader; shapes, agreement with a plain-JS float64 reference, cached decode == full forward,
// 2- and 3-stage chains == unsplit, own tensors only, quantized and bf16 loads.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { createKVCache } from "../../src/models/kv-cache.ts";
import type { ShardModel } from "../../src/models/base.ts";
import { referenceLogits } from "../helpers/reference-forward.ts";
import { loadStage, TINY_CONFIGS } from "../helpers/tiny-models.ts";

const PROMPT = [3, 17, 42, 99, 5, 64, 7, 120];
// Made in beforeAll, not at collection time, so a filtered run (-t) leaves no directory behind.
let root = "";
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "exo-arch-"));
});
afterAll(() => root && rmSync(root, { recursive: true, force: true }));

/** Last-position logits of `tokens` through a chain of stages, each with its own fresh cache. */
function chainLogits(stages: ShardModel[], tokens: number[]): mx.array {
  let h = mx.array([tokens], mx.int32);
  for (const s of stages) h = s.forward(h, createKVCache(s.cacheSpec));
  mx.eval(h);
  return h;
}

function maxAbsDiff(a: mx.array, b: mx.array): number {
  return Number(mx.max(mx.abs(mx.subtract(a, b))).item());
}

function relErr(a: mx.array, b: mx.array): number {
  return Number(mx.divide(mx.sqrt(mx.sum(mx.square(mx.subtract(a, b)))), mx.sqrt(mx.sum(mx.square(b)))).item());
}

for (const [name, config] of Object.entries(TINY_CONFIGS)) {
  describe(`${name} architecture`, () => {
    let dir = "";
    let whole: ShardModel;
    beforeAll(async () => {
      dir = join(root, name);
      await writeRandomCheckpoint(dir, { config, seed: 7 });
      whole = (await loadStage(dir, 0, 4)).model;
    });

    test("the whole model maps a prompt to float32 logits [1, vocab] for the last position", () => {
      const logits = chainLogits([whole], PROMPT);
      expect(logits.shape).toEqual([1, 128]);
      expect(logits.dtype).toBe(mx.float32);
      expect(Number.isFinite(Number(mx.sum(logits).item()))).toBe(true);
    });

    test("logits match an independent float64 reference forward pass written from the HF modelling code", () => {
      const mine = (chainLogits([whole], PROMPT).tolist() as number[][])[0]!;
      const ref = referenceLogits(dir, PROMPT);
      expect(mine).toHaveLength(ref.length);
      const worst = Math.max(...ref.map((r, i) => Math.abs(r - mine[i]!)));
      expect(worst).toBeLessThan(1e-4);
      expect(mine.indexOf(Math.max(...mine))).toBe(ref.indexOf(Math.max(...ref)));
    });

    test("prefill then cached single steps equal the full forward pass at every position, across cache growth", () => {
      const cache = createKVCache({ ...whole.cacheSpec, stepTokens: 3 });
      const prefill = 3;
      const first = whole.forward(mx.array([PROMPT.slice(0, prefill)], mx.int32), cache);
      expect(maxAbsDiff(first, chainLogits([whole], PROMPT.slice(0, prefill)))).toBeLessThan(1e-4);
      for (let i = prefill; i < PROMPT.length; i++) {
        const step = whole.forward(mx.array([[PROMPT[i]!]], mx.int32), cache);
        expect(maxAbsDiff(step, chainLogits([whole], PROMPT.slice(0, i + 1)))).toBeLessThan(1e-4);
      }
      expect(cache.length).toBe(PROMPT.length);
    });

    test("a first stage emits float32 hidden states [1, L, hidden]", async () => {
      const { model } = await loadStage(dir, 0, 2);
      const h = model.forward(mx.array([PROMPT], mx.int32), createKVCache(model.cacheSpec));
      expect(h.shape).toEqual([1, PROMPT.length, 64]);
      expect(h.dtype).toBe(mx.float32);
    });

    test("2 and 3 stages chained by hand give the unsplit logits, for prefill and cached steps", async () => {
      const reference = chainLogits([whole], PROMPT);
      const two = [(await loadStage(dir, 0, 2)).model, (await loadStage(dir, 2, 4)).model];
      const three = [
        (await loadStage(dir, 0, 1)).model,
        (await loadStage(dir, 1, 3)).model,
        (await loadStage(dir, 3, 4)).model,
      ];
      expect(maxAbsDiff(chainLogits(two, PROMPT), reference)).toBeLessThan(1e-4);
      expect(maxAbsDiff(chainLogits(three, PROMPT), reference)).toBeLessThan(1e-4);
      const caches = three.map((s) => createKVCache(s.cacheSpec));
      const run = (tokens: number[]) =>
        three.reduce((h, s, i) => s.forward(h, caches[i]!), mx.array([tokens], mx.int32));
      run(PROMPT.slice(0, 5));
      run(PROMPT.slice(5, 6));
      run(PROMPT.slice(6, 7));
      expect(maxAbsDiff(run(PROMPT.slice(7)), reference)).toBeLessThan(1e-4);
    });

    test("each stage reads only its own tensors", async () => {
      const first = await loadStage(dir, 0, 1);
      const middle = await loadStage(dir, 1, 3);
      const last = await loadStage(dir, 3, 4);
      const tiedHead = config.tie_word_embeddings === true || name === "gemma2";
      expect(middle.tensorsRead.every((n) => /^model\.layers\.[12]\./.test(n))).toBe(true);
      expect(middle.tensorsRead.some((n) => n.startsWith("model.layers.1."))).toBe(true);
      expect(middle.tensorsRead.some((n) => n.startsWith("model.layers.2."))).toBe(true);
      expect(first.tensorsRead.every((n) => n.startsWith("model.layers.0.") || n === "model.embed_tokens.weight")).toBe(
        true,
      );
      expect(first.tensorsRead).toContain("model.embed_tokens.weight");
      const lastOutside = last.tensorsRead.filter((n) => !n.startsWith("model.layers.3.")).sort();
      expect(lastOutside).toEqual(
        tiedHead ? ["model.embed_tokens.weight", "model.norm.weight"] : ["lm_head.weight", "model.norm.weight"],
      );
    });

    test("4-bit and 8-bit quantized checkpoints load, run split or whole, and their error shrinks with more bits", async () => {
      const reference = chainLogits([whole], PROMPT);
      const errors: Record<number, number> = {};
      for (const bits of [4, 8]) {
        const qdir = join(root, `${name}-q${bits}`);
        await writeRandomCheckpoint(qdir, { config, seed: 7, quantize: { bits, groupSize: 32 }, dtype: "bfloat16" });
        const { model, tensorsRead } = await loadStage(qdir, 0, 4);
        expect(tensorsRead.some((n) => n.endsWith(".scales"))).toBe(true);
        const logits = chainLogits([model], PROMPT);
        expect(logits.shape).toEqual([1, 128]);
        const split = [(await loadStage(qdir, 0, 2)).model, (await loadStage(qdir, 2, 4)).model];
        expect(maxAbsDiff(chainLogits(split, PROMPT), logits)).toBeLessThan(1e-4);
        errors[bits] = relErr(logits, reference);
      }
      // Unrelated logits sit near relErr 1.4; 4 more bits cut the weight error 16x. A routed model's error
      // shrinks less: 4-bit noise flips some tokens' expert choice, a discrete jump 8 bits mostly avoid.
      expect(errors[8]!).toBeLessThan(0.1);
      expect(errors[4]!).toBeLessThan(1);
      expect(errors[4]! / errors[8]!).toBeGreaterThan("num_experts" in config ? 1.5 : 4);
    });

    test("a bfloat16 checkpoint loads as float32 and runs on CPU", async () => {
      const bdir = join(root, `${name}-bf16`);
      await writeRandomCheckpoint(bdir, { config, seed: 7, dtype: "bfloat16" });
      const { model } = await loadStage(bdir, 0, 4);
      const logits = chainLogits([model], PROMPT);
      expect(logits.dtype).toBe(mx.float32);
      expect(relErr(logits, chainLogits([whole], PROMPT))).toBeLessThan(0.05);
    });
  });
}
