// Mixture-of-Experts on CPU, side by side in one run: a qwen3_moe middle stage vs a dense qwen3 stage of
// equal active parameters (Qwen3-30B-A3B sizes: hidden 2048, experts 2048x768 top-8 vs a SwiGLU of 6144),
// decode ms per token and a 512-token prefill; float32 vs packed 4-bit experts (time and memory); and the
// switch layer alone, per-pair vs grouped by expert, across input lengths (where grouping starts to pay).
// Medians, the variants interleaved step by step; prints tables and one JSON line. Real expert size, but 32 of the 128
// experts per layer (memory: the machine is shared); decode reads only the 8 chosen ones.
//   bun bench/moe.ts [--layers 2] [--experts 32] [--decode 16] [--rounds 3]
import { core as mx } from "@frost-beta/mlx";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { releaseMemory } from "../src/engine/memory.ts";
import { quantizeRows } from "../src/engine/quantize.ts";
import type { ShardModel, Weights } from "../src/models/base.ts";
import { getArchitecture } from "../src/models/index.ts";
import { createKVCache } from "../src/models/kv-cache.ts";
import { softmaxTopK } from "../src/models/routing.ts";
import { architectureSpec } from "../src/models/spec/architectures.ts";
import { expertSlot } from "../src/models/spec/experts.ts";
import { parseModelArgs, type ModelArgs } from "../src/models/spec/model-args.ts";
import { loadSwitchGLU, switchGLU, type SwitchGLU } from "../src/models/switch-layer.ts";

const { values: opt } = parseArgs({
  options: {
    layers: { type: "string", default: "2" },
    experts: { type: "string", default: "32" },
    decode: { type: "string", default: "16" },
    prefill: { type: "string", default: "512" },
    rounds: { type: "string", default: "3" },
  },
});
const LAYERS = Number(opt.layers);
const EXPERTS = Number(opt.experts);
const DECODE = Number(opt.decode);
const PREFILL = Number(opt.prefill);
const ROUNDS = Number(opt.rounds);
const H = 2048;
const MOE_I = 768;
const TOP_K = 8;

const common = {
  hidden_size: H,
  num_hidden_layers: LAYERS + 2,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  head_dim: 128,
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 4096,
  tie_word_embeddings: false,
};
const MOE = {
  ...common,
  model_type: "qwen3_moe",
  intermediate_size: 6144,
  num_experts: EXPERTS,
  num_experts_per_tok: TOP_K,
  moe_intermediate_size: MOE_I,
  norm_topk_prob: true,
};
const DENSE = { ...common, model_type: "qwen3", intermediate_size: TOP_K * MOE_I };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rssMb = () => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
};
const bytesOf = (w: Weights) => [...w.values()].reduce((s, t) => s + t.size * t.itemsize, 0);

/** Random weights of the middle stage [1, 1 + LAYERS): experts stacked, optionally packed to 4 bits. */
async function stageWeights(args: ModelArgs, packExperts: boolean): Promise<Weights> {
  const shapes = architectureSpec(args.modelType).tensorShapes(args);
  const w: Weights = new Map();
  const stacks = new Map<string, number[]>();
  let seed = 1;
  for (const [name, shape] of Object.entries(shapes)) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (!layer || Number(layer[1]) < 1 || Number(layer[1]) > LAYERS) continue;
    const slot = expertSlot(name);
    if (slot) {
      stacks.set(slot.stacked, [args.moe!.numExperts, ...shape]);
      continue;
    }
    const std = shape.length === 1 ? 0.1 : 1 / Math.sqrt(shape[shape.length - 1]!);
    const t = mx.random.uniform(-std, std, shape, mx.float32, mx.random.key(seed++));
    w.set(name, name.endsWith("norm.weight") ? mx.add(t, 1) : t);
  }
  for (const [name, shape] of stacks) {
    const std = 1 / Math.sqrt(shape[2]!);
    const t = mx.random.uniform(-std, std, shape, mx.float32, mx.random.key(seed++));
    if (!packExperts) {
      w.set(name, t);
      mx.eval(t);
      continue;
    }
    const [q, s, b] = await quantizeRows(t.reshape(-1, shape[2]!), 64, 4);
    const back = (a: mx.array) => a.reshape(shape[0]!, shape[1]!, -1);
    const prefix = name.replace(/\.weight$/, "");
    w.set(name, back(q));
    w.set(`${prefix}.scales`, back(s));
    w.set(`${prefix}.biases`, back(b));
    mx.eval(back(q), back(s), back(b));
    await releaseMemory();
  }
  mx.eval(...w.values());
  await releaseMemory();
  return w;
}

interface Variant {
  name: string;
  model: ShardModel;
  weights: Weights;
  weightBytes: number;
  rssGrowthMb: number;
}

async function variant(name: string, config: Record<string, unknown>, pack: boolean): Promise<Variant> {
  const before = rssMb();
  const args = parseModelArgs(pack ? { ...config, quantization: { group_size: 64, bits: 4 } } : config);
  const weights = await stageWeights(args, pack);
  const range = { layerStart: 1, layerEnd: 1 + LAYERS, nLayers: LAYERS + 2 };
  const model = getArchitecture(args.modelType).create(args, range, weights);
  await releaseMemory();
  return { name, model, weights, weightBytes: bytesOf(weights), rssGrowthMb: rssMb() - before };
}

const hidden = (L: number, seed: number) => mx.random.uniform(-1, 1, [1, L, H], mx.float32, mx.random.key(seed));

/**
 * Decode and prefill of every variant, interleaved step by step (decode) and round by round (prefill) so
 * load bursts on the shared machine hit all variants alike. Decode steps follow an 8-token prefill.
 */
async function timeAll(models: ShardModel[]): Promise<{ decode: number[][]; prefill: number[][] }> {
  const decode = models.map(() => [] as number[]);
  const prefill = models.map(() => [] as number[]);
  const caches = models.map((m) => createKVCache(m.cacheSpec));
  models.forEach((m, i) => mx.eval(m.forward(hidden(8, 3), caches[i]!)));
  for (let step = 0; step < DECODE * ROUNDS; step++) {
    const x = hidden(1, 100 + step);
    mx.eval(x);
    for (const [i, m] of models.entries()) {
      const t0 = performance.now();
      mx.eval(m.forward(x, caches[i]!));
      decode[i]!.push(performance.now() - t0);
    }
    if (step % 4 === 3) await releaseMemory();
  }
  for (const c of caches) c.free();
  const x = hidden(PREFILL, 7);
  mx.eval(x);
  for (let r = 0; r < ROUNDS; r++)
    for (const [i, m] of models.entries()) {
      const fresh = createKVCache(m.cacheSpec);
      const t0 = performance.now();
      mx.eval(m.forward(x, fresh));
      prefill[i]!.push(performance.now() - t0);
      fresh.free();
      await releaseMemory();
    }
  return { decode, prefill };
}

/** The switch layer alone: per-pair vs grouped, float32 experts, at several input lengths. */
async function switchRows(layer: SwitchGLU): Promise<{ tokens: number; pairsMs: number; groupedMs: number }[]> {
  const rows: { tokens: number; pairsMs: number; groupedMs: number }[] = [];
  const router = mx.random.uniform(-0.05, 0.05, [EXPERTS, H], mx.float32, mx.random.key(9));
  for (const T of [1, 2, 4, 8, 32, 128]) {
    const x = mx.random.uniform(-1, 1, [T, H], mx.float32, mx.random.key(T));
    const routing = softmaxTopK(mx.matmul(x, router.T), TOP_K, true);
    mx.eval(x, routing.experts, routing.weights);
    // Alternate the two paths sample by sample.
    const pairs: number[] = [];
    const grouped: number[] = [];
    for (let r = 0; r < 5; r++)
      for (const [groupMinTokens, into] of [
        [Number.POSITIVE_INFINITY, pairs],
        [1, grouped],
      ] as const) {
        const t0 = performance.now();
        mx.eval(switchGLU(layer, x, routing, { groupMinTokens }));
        into.push(performance.now() - t0);
        await releaseMemory();
      }
    rows.push({ tokens: T, pairsMs: median(pairs), groupedMs: median(grouped) });
  }
  return rows;
}

const load0 = readFileSync("/proc/loadavg", "utf8").trim();
const variants = [
  await variant("dense qwen3 (SwiGLU 6144)", DENSE, false),
  await variant("qwen3_moe f32 experts", MOE, false),
  await variant("qwen3_moe q4 experts (packed)", MOE, true),
];
const timed = await timeAll(variants.map((v) => v.model));
const denseDecode = median(timed.decode[0]!);
const densePrefill = median(timed.prefill[0]!);
const rows = variants.map((v, i) => {
  const decodeMs = median(timed.decode[i]!);
  const prefillMs = median(timed.prefill[i]!);
  return {
    variant: v.name,
    decodeMs,
    decodeRatio: decodeMs / denseDecode,
    prefillMs,
    prefillRatio: prefillMs / densePrefill,
    weightMb: v.weightBytes / 2 ** 20,
    rssGrowthMb: v.rssGrowthMb,
  };
});

// The switch layer of the f32 MoE stage's first layer.
const layer = loadSwitchGLU(variants[1]!.weights, "model.layers.1.mlp", EXPERTS);
const sw = await switchRows(layer);
const load1 = readFileSync("/proc/loadavg", "utf8").trim();

console.log(
  `${LAYERS}-layer middle stage, hidden ${H}, ${EXPERTS} experts of ${H}x${MOE_I} top-${TOP_K} vs dense SwiGLU ${TOP_K * MOE_I}; ` +
    `medians of ${DECODE * ROUNDS} interleaved decode steps and ${ROUNDS} prefills of ${PREFILL} tokens; loadavg ${load0} -> ${load1}`,
);
console.log("variant                        | decode ms/tok | x dense | prefill ms | x dense | weights MB | RSS +MB");
for (const r of rows)
  console.log(
    `${r.variant.padEnd(30)} | ${r.decodeMs.toFixed(2).padStart(13)} | ${r.decodeRatio.toFixed(2).padStart(7)} | ${r.prefillMs
      .toFixed(0)
      .padStart(
        10,
      )} | ${r.prefillRatio.toFixed(2).padStart(7)} | ${r.weightMb.toFixed(0).padStart(10)} | ${r.rssGrowthMb.toFixed(0).padStart(7)}`,
  );
console.log("\nswitch layer alone (one layer, f32 experts): tokens | per-pair ms | grouped ms | pairs / grouped");
for (const s of sw)
  console.log(
    `${String(s.tokens).padStart(6)} | ${s.pairsMs.toFixed(2).padStart(11)} | ${s.groupedMs.toFixed(2).padStart(10)} | ${(s.pairsMs / s.groupedMs).toFixed(2)}`,
  );
console.log(
  JSON.stringify({
    bench: "moe",
    layers: LAYERS,
    experts: EXPERTS,
    hidden: H,
    expertIntermediate: MOE_I,
    topK: TOP_K,
    rounds: ROUNDS,
    loadavg: [load0, load1],
    rows,
    switchLayer: sw,
  }),
);
