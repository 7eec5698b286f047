// DeepSeek side by side in one run: (1) KV-cache bytes per token, absorbed latent cache vs keys and values
// expanded per head, at DeepSeek-V3's real sizes (and the context 16 GiB of headroom holds), checked against
// the cache a scaled model really allocates; (2) decode ms of one V3-shaped layer scaled down to fit this
// machine (MLA + 8-of-N routed experts + a shared expert) vs the same layer with the naive attention form vs a
// dense layer of equal active size (same MLA, SwiGLU of (top-k + shared) × moe_intermediate); (3) routing
// cost per token. Medians over alternating rounds; a table and one JSON line.
// Usage: nice -n 10 bun bench/deepseek.ts [--steps 24] [--rounds 3] [--context 128]
import { core as mx } from "@frost-beta/mlx";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { releaseMemory } from "../src/engine/memory.ts";
import { writeRandomCheckpoint } from "../src/engine/random-checkpoint.ts";
import { loadShardWeights } from "../src/engine/weights.ts";
import type { ShardModel } from "../src/models/base.ts";
import { createDeepseek } from "../src/models/deepseek.ts";
import { createKVCache } from "../src/models/kv-cache.ts";
import type { AbsorbMode } from "../src/models/latent-attention.ts";
import { deepseekRoute } from "../src/models/routing.ts";
import { readConfigFile } from "../src/models/spec/config-file.ts";
import { expandedCacheValuesPerToken, latentCacheValuesPerToken } from "../src/models/spec/deepseek-args.ts";
import { parseModelArgs } from "../src/models/spec/model-args.ts";

const { values: opt } = parseArgs({
  options: {
    steps: { type: "string", default: "24" },
    rounds: { type: "string", default: "3" },
    context: { type: "string", default: "128" },
  },
});
const STEPS = Number(opt.steps);
const ROUNDS = Number(opt.rounds);
const CONTEXT = Number(opt.context);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const GiB = 1024 ** 3;

// ---- (1) KV-cache bytes per token at V3's real sizes ----------------------------------------------------
const V3 = parseModelArgs({
  model_type: "deepseek_v3",
  hidden_size: 7168,
  num_hidden_layers: 61,
  num_attention_heads: 128,
  intermediate_size: 18432,
  moe_intermediate_size: 2048,
  vocab_size: 129280,
  q_lora_rank: 1536,
  kv_lora_rank: 512,
  qk_nope_head_dim: 128,
  qk_rope_head_dim: 64,
  v_head_dim: 128,
  n_routed_experts: 256,
  n_shared_experts: 1,
  num_experts_per_tok: 8,
  n_group: 8,
  topk_group: 4,
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  first_k_dense_replace: 3,
});
const d3 = V3.deepseek!;
const kvRows = [
  ["float32 (CPU)", 4],
  ["bfloat16 (Metal)", 2],
] as const;
const kv = kvRows.flatMap(([dtype, bytes]) => {
  const absorbed = latentCacheValuesPerToken(d3) * bytes * V3.numHiddenLayers;
  const naive = expandedCacheValuesPerToken(d3, V3.numAttentionHeads) * bytes * V3.numHiddenLayers;
  return [
    {
      dtype,
      absorbed,
      naive,
      ratio: naive / absorbed,
      ctxAbsorbed: Math.floor((16 * GiB) / absorbed),
      ctxNaive: Math.floor((16 * GiB) / naive),
    },
  ];
});

// ---- (2) one V3-shaped layer, scaled down, vs a dense layer of equal active size ------------------------
const SCALED = {
  model_type: "deepseek_v3",
  hidden_size: 1792,
  num_hidden_layers: 2,
  num_attention_heads: 32,
  num_key_value_heads: 32,
  vocab_size: 256,
  rms_norm_eps: 1e-6,
  max_position_embeddings: 4096,
  q_lora_rank: 384,
  kv_lora_rank: 128,
  qk_nope_head_dim: 32,
  qk_rope_head_dim: 16,
  v_head_dim: 32,
  moe_intermediate_size: 512,
  intermediate_size: 512 * 9,
  rope_theta: 10000,
  tie_word_embeddings: true,
};
const MOE = {
  ...SCALED,
  n_routed_experts: 32,
  n_shared_experts: 1,
  num_experts_per_tok: 8,
  n_group: 8,
  topk_group: 4,
  topk_method: "noaux_tc",
  scoring_func: "sigmoid",
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  first_k_dense_replace: 0,
  // Layer 0 routed, layer 1 dense: the benchmark loads layer 0 only.
  moe_layer_freq: 2,
};
const DENSE = { ...SCALED, n_routed_experts: null };

const root = join(tmpdir(), `exo-bench-deepseek-${process.pid}`);
const written = new Set<string>();
async function firstLayer(config: Record<string, unknown>, name: string, absorb: AbsorbMode): Promise<ShardModel> {
  const dir = join(root, name);
  if (!written.has(dir)) await writeRandomCheckpoint(dir, { config, seed: 1 });
  written.add(dir);
  const args = parseModelArgs(await readConfigFile(dir));
  const range = { layerStart: 0, layerEnd: 1, nLayers: 2 };
  const { weights } = await loadShardWeights(
    dir,
    (n) => n.startsWith("model.layers.0.") || n.startsWith("model.embed"),
    {
      native: false,
    },
  );
  return createDeepseek(args, range, weights, { absorb });
}

type Variant = { name: string; model: ShardModel };
let variants: Variant[] = [];
let decodeMs: Record<string, number[]> = {};
let cacheBytesPerToken = 0;
try {
  const moeAbsorbed = await firstLayer(MOE, "moe", "decode");
  variants = [
    { name: "V3 layer (MLA absorbed + MoE)", model: moeAbsorbed },
    { name: "V3 layer, naive attention decode", model: await firstLayer(MOE, "moe", "never") },
    { name: "dense layer, equal active size", model: await firstLayer(DENSE, "dense", "decode") },
  ];
  decodeMs = Object.fromEntries(variants.map((v) => [v.name, [] as number[]]));
  const prompt = Array.from({ length: CONTEXT }, (_, i) => (i * 37) % 256);
  for (let r = 0; r < ROUNDS; r++) {
    for (const v of variants) {
      const cache = createKVCache(v.model.cacheSpec);
      mx.eval(v.model.forward(mx.array([prompt], mx.int32), cache));
      // Two untimed steps: the first graph of a shape pays for allocations the others reuse.
      for (let w = 0; w < 2; w++) mx.eval(v.model.forward(mx.array([[w]], mx.int32), cache));
      for (let s = 0; s < STEPS; s++) {
        const t0 = performance.now();
        mx.eval(v.model.forward(mx.array([[s % 256]], mx.int32), cache));
        decodeMs[v.name]!.push(performance.now() - t0);
        if (s % 4 === 3) await releaseMemory();
      }
      if (v.model === moeAbsorbed && r === 0) {
        // What the cache really holds per token and layer: keys-only buffers of [latent ‖ rope key] floats.
        const spec = v.model.cacheSpec;
        cacheBytesPerToken = spec.nKvHeads * (spec.headDim + (spec.valueDim ?? spec.headDim)) * 4;
      }
      cache.free();
      await releaseMemory();
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

// ---- (2b) the attention alone: how the absorbed form calls SDPA ------------------------------------------
// With one shared K/V head, SDPA can broadcast it to the H query heads, or the heads can be folded into the
// query axis ([1, 1, H, 576] for one token); latent-attention.ts folds. Naive expands K and V per head.
const attnMs: Record<string, Record<number, number>> = {};
{
  const {
    num_attention_heads: H,
    qk_nope_head_dim: nope,
    qk_rope_head_dim: rope,
    kv_lora_rank: lora,
    v_head_dim: v,
  } = SCALED;
  const S = mx.Slice;
  const wk = mx.random.uniform(-0.1, 0.1, [H, nope, lora], mx.float32, mx.random.key(5));
  const wvT = mx.random.uniform(-0.1, 0.1, [H, v, lora], mx.float32, mx.random.key(6)).swapaxes(-1, -2);
  const wkT = wk.swapaxes(-1, -2);
  for (const T of [128, 1024]) {
    const stored = mx.random.uniform(-1, 1, [1, 1, T, lora + rope], mx.float32, mx.random.key(7));
    const qNope = mx.random.uniform(-1, 1, [1, H, 1, nope], mx.float32, mx.random.key(8));
    const qPe = mx.random.uniform(-1, 1, [1, H, 1, rope], mx.float32, mx.random.key(9));
    mx.eval(wk, wvT, stored, qNope, qPe);
    const latent = stored.index("...", S(0, lora));
    const forms: Record<string, () => mx.array> = {
      "absorbed, heads folded into the query axis": () => {
        const q = mx.concatenate([mx.matmul(qNope, wk), qPe], -1).reshape(1, 1, H, lora + rope);
        return mx.matmul(
          mx.fast.scaledDotProductAttention(q, stored, latent, 0.1, undefined).reshape(1, H, 1, lora),
          wvT,
        );
      },
      "absorbed, SDPA broadcasting 1 K/V head to H": () => {
        const q = mx.concatenate([mx.matmul(qNope, wk), qPe], -1);
        return mx.matmul(mx.fast.scaledDotProductAttention(q, stored, latent, 0.1, undefined), wvT);
      },
      "naive, K and V expanded per head": () => {
        const keys = mx.concatenate(
          [mx.matmul(latent, wkT), mx.broadcastTo(stored.index("...", S(lora, lora + rope)), [1, H, T, rope])],
          -1,
        );
        return mx.fast.scaledDotProductAttention(
          mx.concatenate([qNope, qPe], -1),
          keys,
          mx.matmul(latent, wvT),
          0.1,
          undefined,
        );
      },
    };
    for (let r = 0; r < 2; r++)
      for (const [name, f] of Object.entries(forms)) {
        const times: number[] = [];
        for (let i = 0; i < 21; i++) {
          const t0 = performance.now();
          mx.eval(f());
          times.push(performance.now() - t0);
        }
        if (r === 1) attnMs[name] = { ...attnMs[name], [T]: median(times) };
      }
    await releaseMemory();
  }
}

// ---- (3) routing cost per token -------------------------------------------------------------------------
const routing = d3.routing!;
const routeMs: Record<string, number> = {};
for (const [label, r, tokens] of [
  ["V3 noaux_tc, 256 experts, 8 groups, top-8: 1 token", routing, 1],
  ["V3 noaux_tc: per token of a 128-token prefill", routing, 128],
  [
    "V2 softmax greedy, 160 experts, top-6: 1 token",
    {
      ...routing,
      method: "greedy",
      nExperts: 160,
      topK: 6,
      nGroup: 1,
      topkGroup: 1,
      normTopkProb: false,
      routedScalingFactor: 16,
    },
    1,
  ],
] as const) {
  const logits = mx.random.uniform(-2, 2, [tokens, r.nExperts], mx.float32, mx.random.key(3));
  const bias = mx.random.uniform(-0.1, 0.1, [r.nExperts], mx.float32, mx.random.key(4));
  mx.eval(logits, bias);
  const times: number[] = [];
  for (let i = 0; i < 41; i++) {
    const t0 = performance.now();
    const { experts: indices, weights } = deepseekRoute(logits, r, bias);
    mx.eval(indices, weights);
    times.push((performance.now() - t0) / tokens);
  }
  routeMs[label] = median(times);
}

// ---- report ---------------------------------------------------------------------------------------------
const load = (await Bun.file("/proc/loadavg").text()).trim();
const mb = (b: number) => `${(b / 1024 ** 2).toFixed(3)} MB`;
console.log(`load average: ${load}`);
console.log("\nKV cache per token, DeepSeek-V3 (61 layers, 128 heads)");
console.log(
  "| dtype | absorbed (latent + rope key) | naive (K,V per head) | naive/absorbed | context in 16 GiB: absorbed | naive |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const k of kv)
  console.log(
    `| ${k.dtype} | ${k.absorbed.toLocaleString()} B | ${mb(k.naive)} | ${k.ratio.toFixed(1)}x | ${k.ctxAbsorbed.toLocaleString()} tokens | ${k.ctxNaive.toLocaleString()} tokens |`,
  );
console.log(
  `scaled model's cache, measured from its buffers: ${cacheBytesPerToken} B per token per layer (= (${MOE.kv_lora_rank} + ${MOE.qk_rope_head_dim}) x 4)`,
);
const base = median(decodeMs[variants[2]!.name]!);
console.log(
  `\nDecode of one layer (hidden ${SCALED.hidden_size}, 32 heads, 32 experts top-8 + 1 shared, context ${CONTEXT}), median of ${ROUNDS}x${STEPS} steps`,
);
console.log("| layer | ms/step | x dense |");
console.log("| --- | --- | --- |");
for (const v of variants)
  console.log(
    `| ${v.name} | ${median(decodeMs[v.name]!).toFixed(2)} | ${(median(decodeMs[v.name]!) / base).toFixed(2)} |`,
  );
console.log("\nLatent attention alone, one decode query, 32 heads (scaled V3), median of 21");
console.log("| form | ms at context 128 | ms at context 1024 |");
console.log("| --- | --- | --- |");
for (const [name, byT] of Object.entries(attnMs))
  console.log(`| ${name} | ${byT[128]!.toFixed(3)} | ${byT[1024]!.toFixed(3)} |`);
console.log("\nRouting cost (router logits given), median of 41");
console.log("| router | ms per token |");
console.log("| --- | --- |");
for (const [label, ms] of Object.entries(routeMs)) console.log(`| ${label} | ${ms.toFixed(4)} |`);
console.log(
  JSON.stringify({
    bench: "deepseek",
    load,
    kv,
    scaledCacheBytesPerTokenPerLayer: cacheBytesPerToken,
    decodeMedianMs: Object.fromEntries(variants.map((v) => [v.name, median(decodeMs[v.name]!)])),
    attentionMs: attnMs,
    routeMsPerToken: routeMs,
  }),
);
