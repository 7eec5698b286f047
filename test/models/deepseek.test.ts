// DeepSeek V2/V3 and Kimi K2 on tiny random checkpoints written to disk and loaded through the real loader:
// agreement with a float64 reference written from the HF modelling code (prefill and cached decode),
// absorbed latent attention == the naive form, 2/3 stages == unsplit, the MTP layer never read, 4/8-bit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { copyFileSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { loadShardWeights } from "../../src/engine/weights.ts";
import type { ShardModel } from "../../src/models/base.ts";
import { readConfigFile } from "../../src/models/spec/config-file.ts";
import { parseModelArgs } from "../../src/models/spec/model-args.ts";
import { createDeepseek } from "../../src/models/deepseek.ts";
import { createKVCache } from "../../src/models/kv-cache.ts";
import type { AbsorbMode } from "../../src/models/latent-attention.ts";
import { referenceDeepseekLogits } from "../helpers/reference-deepseek.ts";
import { TINY_DEEPSEEK } from "../helpers/tiny-deepseek.ts";
import { loadStage } from "../helpers/tiny-models.ts";

const PROMPT = [3, 17, 42, 99, 5, 64, 7, 120];
let root = "";
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "exo-deepseek-"));
});
afterAll(() => root && rmSync(root, { recursive: true, force: true }));

const logitsOf = (a: mx.array) => (a.tolist() as number[][])[0]!;
const maxAbsDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

function chainLogits(stages: ShardModel[], tokens: number[]): number[] {
  let h = mx.array([tokens], mx.int32);
  for (const s of stages) h = s.forward(h, createKVCache(s.cacheSpec));
  return logitsOf(h);
}

/** A stage built with an explicit latent-attention form (the registry always uses the default). */
async function loadWithForm(dir: string, absorb: AbsorbMode): Promise<ShardModel> {
  const args = parseModelArgs(await readConfigFile(dir));
  const range = { layerStart: 0, layerEnd: args.numHiddenLayers, nLayers: args.numHiddenLayers };
  const { weights } = await loadShardWeights(dir, () => true, { native: false });
  return createDeepseek(args, range, weights, { absorb });
}

/** The prompt fed in chunks of these sizes (a prefill, a second prefill chunk on a filled cache, single steps). */
const CHUNKS = [3, 2, 1, 1, 1];

/** Logits after each chunk of CHUNKS, through one cache that grows in steps of 3 positions. */
function cachedRun(model: ShardModel): number[][] {
  const cache = createKVCache({ ...model.cacheSpec, stepTokens: 3 });
  const out: number[][] = [];
  let at = 0;
  for (const n of CHUNKS) {
    out.push(logitsOf(model.forward(mx.array([PROMPT.slice(at, at + n)], mx.int32), cache)));
    at += n;
  }
  return out;
}

/** Prompt length after chunk i. */
const endOf = (i: number) => CHUNKS.slice(0, i + 1).reduce((a, b) => a + b, 0);

/** V3 and Kimi as mlx-community ships them (experts stacked); V2 in Hugging Face's one-tensor-per-expert layout. */
const STACKED = new Set(["deepseek_v3", "kimi_k2"]);

for (const [name, config] of Object.entries(TINY_DEEPSEEK)) {
  describe(`${name} (${STACKED.has(name) ? "stacked experts" : "one tensor per expert"})`, () => {
    let dir = "";
    let whole: ShardModel;
    beforeAll(async () => {
      dir = join(root, name);
      await writeRandomCheckpoint(dir, { config, seed: 7, stackExperts: STACKED.has(name) });
      whole = (await loadStage(dir, 0, 4)).model;
    });

    test("prefill logits match the float64 reference written from the HF modelling code", () => {
      const mine = chainLogits([whole], PROMPT);
      const ref = referenceDeepseekLogits(dir, PROMPT);
      expect(mine).toHaveLength(128);
      expect(maxAbsDiff(mine, ref)).toBeLessThan(1e-4);
      expect(mine.indexOf(Math.max(...mine))).toBe(ref.indexOf(Math.max(...ref)));
    });

    test("a second prefill chunk and cached decode steps (absorbed, latent-only cache) match the reference", () => {
      cachedRun(whole).forEach((logits, i) => {
        expect(maxAbsDiff(logits, referenceDeepseekLogits(dir, PROMPT.slice(0, endOf(i))))).toBeLessThan(1e-4);
      });
    });

    test("the absorbed form equals the naive form, for prefill chunks and for cached steps", async () => {
      const absorbed = cachedRun(await loadWithForm(dir, "always"));
      const naive = cachedRun(await loadWithForm(dir, "never"));
      absorbed.forEach((logits, i) => expect(maxAbsDiff(logits, naive[i]!)).toBeLessThan(1e-4));
    });

    test("the cache holds only the latent and the shared rope key per token", () => {
      const c = config as Record<string, number>;
      expect(whole.cacheSpec).toMatchObject({
        nKvHeads: 1,
        headDim: c.kv_lora_rank! + c.qk_rope_head_dim!,
        valueDim: 0,
      });
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
      expect(maxAbsDiff(logitsOf(run(PROMPT.slice(7))), reference)).toBeLessThan(1e-4);
    });

    test("each stage reads only its own tensors, and never a multi-token-prediction layer", async () => {
      const first = await loadStage(dir, 0, 1);
      const middle = await loadStage(dir, 1, 3);
      const last = await loadStage(dir, 3, 4);
      expect(middle.tensorsRead.every((n) => /^model\.layers\.[12]\./.test(n))).toBe(true);
      expect(first.tensorsRead.every((n) => n.startsWith("model.layers.0.") || n === "model.embed_tokens.weight")).toBe(
        true,
      );
      expect(last.tensorsRead.filter((n) => !n.startsWith("model.layers.3.")).sort()).toEqual([
        "lm_head.weight",
        "model.norm.weight",
      ]);
      for (const s of [first, middle, last])
        expect(s.tensorsRead.some((n) => n.startsWith("model.layers.4."))).toBe(false);
    });
  });
}

describe("deepseek_v3 checkpoint details", () => {
  test("mlx-lm's split of kv_b_proj (embed_q [H, lora, nope] and unembed_out [H, v, lora]) gives the same logits", async () => {
    const config = TINY_DEEPSEEK.deepseek_v3!;
    const dir = join(root, "v3-kvb");
    await writeRandomCheckpoint(dir, { config, seed: 9, stackExperts: true });
    const split = join(root, "v3-embed-q");
    mkdirSync(split, { recursive: true });
    copyFileSync(join(dir, "config.json"), join(split, "config.json"));
    const all = mx.load(join(dir, "model.safetensors")) as unknown as Record<string, mx.array>;
    const c = config as Record<string, number>;
    const [H, nope, v, lora] = [c.num_attention_heads!, c.qk_nope_head_dim!, c.v_head_dim!, c.kv_lora_rank!];
    const out: Record<string, mx.array> = {};
    for (const [name, t] of Object.entries(all)) {
      const m = /^(.*\.self_attn)\.kv_b_proj\.weight$/.exec(name);
      if (!m) {
        out[name] = t;
        continue;
      }
      const perHead = t.reshape(H, nope + v, lora);
      out[`${m[1]}.embed_q.weight`] = mx.add(perHead.index(mx.Slice(), mx.Slice(0, nope)).swapaxes(-1, -2), 0);
      out[`${m[1]}.unembed_out.weight`] = mx.add(perHead.index(mx.Slice(), mx.Slice(nope, nope + v)), 0);
    }
    mx.saveSafetensors(join(split, "model.safetensors"), out, { format: "mlx" });
    const reference = chainLogits([(await loadStage(dir, 0, 4)).model], PROMPT);
    const { model, tensorsRead } = await loadStage(split, 0, 4);
    expect(tensorsRead).toContain("model.layers.0.self_attn.embed_q.weight");
    expect(tensorsRead.some((n) => n.includes("kv_b_proj"))).toBe(false);
    expect(maxAbsDiff(chainLogits([model], PROMPT), reference)).toBeLessThan(1e-5);
  });

  test("the V3 checkpoint carries an MTP layer, a correction bias, a shared expert and a dense first layer", async () => {
    const dir = join(root, "v3-layout");
    const { tensorNames } = await writeRandomCheckpoint(dir, {
      config: TINY_DEEPSEEK.deepseek_v3!,
      seed: 3,
      stackExperts: true,
    });
    expect(tensorNames.some((n) => n.startsWith("model.layers.4.eh_proj"))).toBe(true);
    expect(tensorNames).toContain("model.layers.1.mlp.gate.e_score_correction_bias");
    expect(tensorNames).toContain("model.layers.1.mlp.shared_experts.gate_proj.weight");
    expect(tensorNames).toContain("model.layers.0.mlp.gate_proj.weight");
    expect(tensorNames).toContain("model.layers.1.mlp.switch_mlp.gate_proj.weight");
    expect(tensorNames.some((n) => n.startsWith("model.layers.0.mlp.switch_mlp"))).toBe(false);
    expect(tensorNames).toContain("lm_head.weight");
    const { tensorsRead } = await loadStage(dir, 0, 4);
    expect(tensorsRead.some((n) => n.startsWith("model.layers.4."))).toBe(false);
  });

  test("3-, 4- and 8-bit quantized checkpoints load, run split or whole, and their error shrinks with more bits", async () => {
    const config = TINY_DEEPSEEK.deepseek_v3!;
    const fdir = join(root, "v3-f32");
    await writeRandomCheckpoint(fdir, { config, seed: 7, stackExperts: true });
    const reference = chainLogits([(await loadStage(fdir, 0, 4)).model], PROMPT);
    const relErr = (a: number[]) =>
      Math.sqrt(a.reduce((s, x, i) => s + (x - reference[i]!) ** 2, 0) / reference.reduce((s, x) => s + x * x, 0));
    const errors: Record<number, number> = {};
    for (const bits of [3, 4, 8]) {
      const qdir = join(root, `v3-q${bits}`);
      // As mlx-lm converts DeepSeek: every linear and expert stack quantized, the router (MoEGate) left in floats.
      const quantize = { bits, groupSize: 32, override: (p: string) => (p.endsWith(".mlp.gate") ? false : undefined) };
      await writeRandomCheckpoint(qdir, { config, seed: 7, quantize, stackExperts: true });
      const { model, tensorsRead } = await loadStage(qdir, 0, 4);
      expect(tensorsRead).toContain("model.layers.1.self_attn.kv_b_proj.scales");
      expect(tensorsRead).toContain("model.layers.1.mlp.switch_mlp.down_proj.scales");
      expect(tensorsRead).not.toContain("model.layers.1.mlp.gate.scales");
      const logits = chainLogits([model], PROMPT);
      const split = [(await loadStage(qdir, 0, 2)).model, (await loadStage(qdir, 2, 4)).model];
      expect(maxAbsDiff(chainLogits(split, PROMPT), logits)).toBeLessThan(1e-4);
      errors[bits] = relErr(logits);
    }
    // Unrelated logits sit near relErr 1.4. A flipped expert choice moves the logits in a jump, so the
    // bounds are looser than for a dense model (measured: 8-bit 0.02, 4-bit 0.63, 3-bit 0.74).
    expect(errors[8]!).toBeLessThan(0.2);
    expect(errors[4]!).toBeLessThan(1);
    expect(errors[3]!).toBeLessThan(1.2);
    expect(errors[4]! / errors[8]!).toBeGreaterThan(3);
    expect(errors[3]!).toBeGreaterThan(errors[8]!);
  });
});
