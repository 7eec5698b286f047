// The pieces of the DeepSeek family on their own: config parsing and refusals, YaRN numbers, and the three
// routers against the float64 reference router (random logits, many tokens) and a hand-made case.
import { describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../../src/errors.ts";
import { findModel, loadCatalog } from "../../src/catalog/catalog.ts";
import { expertShare, storedWeightBytes } from "../../src/models/spec/footprint.ts";
import { parseModelArgs } from "../../src/models/spec/model-args.ts";
import {
  expandedCacheValuesPerToken,
  isMoeLayer,
  latentCacheValuesPerToken,
  parseDeepseekArgs,
} from "../../src/models/spec/deepseek-args.ts";
import { deepseekRoute } from "../../src/models/routing.ts";
import { yarnAttentionFactor, yarnInvFreq, yarnMscale } from "../../src/models/yarn.ts";
import { referenceRoute } from "../helpers/reference-deepseek.ts";
import { TINY_DEEPSEEK } from "../helpers/tiny-deepseek.ts";

/** DeepSeek-V3's published config.json, the fields this build reads. */
const V3_CONFIG = {
  model_type: "deepseek_v3",
  hidden_size: 7168,
  num_hidden_layers: 61,
  num_attention_heads: 128,
  num_key_value_heads: 128,
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
  topk_method: "noaux_tc",
  scoring_func: "sigmoid",
  norm_topk_prob: true,
  routed_scaling_factor: 2.5,
  first_k_dense_replace: 3,
  moe_layer_freq: 1,
  num_nextn_predict_layers: 1,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 163840,
  rope_scaling: {
    beta_fast: 32,
    beta_slow: 1,
    factor: 40,
    mscale: 1.0,
    mscale_all_dim: 1.0,
    original_max_position_embeddings: 4096,
    type: "yarn",
  },
};

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof NodeError ? e.code : "not a NodeError";
  }
  return undefined;
}

describe("DeepSeek config", () => {
  test("V3's real sizes: 576 cached values per layer per token instead of 40,960 expanded", () => {
    const args = parseModelArgs(V3_CONFIG);
    const d = args.deepseek!;
    expect(latentCacheValuesPerToken(d)).toBe(576);
    expect(expandedCacheValuesPerToken(d, args.numAttentionHeads)).toBe(128 * (128 + 64 + 128));
    expect(d.mtpLayers).toBe(1);
    expect([0, 1, 2, 3, 60].map((i) => isMoeLayer(d, i))).toEqual([false, false, false, true, true]);
    expect(args.ropeScaling).toMatchObject({ kind: "yarn", factor: 40, mscaleAllDim: 1 });
  });

  test("V3's tensor shapes count the catalog's 4-bit size and expert share (every expert, MTP layer aside)", () => {
    const args = parseModelArgs({
      ...V3_CONFIG,
      num_nextn_predict_layers: 0,
      quantization: { group_size: 64, bits: 4 },
    });
    const entry = findModel(loadCatalog(), "deepseek-v3")!;
    expect(Math.abs(storedWeightBytes(args) / entry.sizeBytes - 1)).toBeLessThan(0.01);
    expect(expertShare(args)).toBeCloseTo(entry.expertShare!, 3);
  });

  test("kimi_k2 parses onto the same fields; V2-Lite's null q_lora_rank means a plain q_proj", () => {
    expect(
      parseModelArgs({ ...V3_CONFIG, model_type: "kimi_k2", n_group: 1, topk_group: 1 }).deepseek?.routing,
    ).toMatchObject({
      method: "noaux_tc",
      nGroup: 1,
    });
    const lite = parseModelArgs(TINY_DEEPSEEK["deepseek_v2-lite"]!).deepseek!;
    expect(lite.qLoraRank).toBeUndefined();
    expect(lite.routing?.method).toBe("greedy");
  });

  test("an original FP8 checkpoint is refused with the reason and what to use instead", () => {
    const fp8 = {
      ...V3_CONFIG,
      quantization_config: { quant_method: "fp8", fmt: "e4m3", weight_block_size: [128, 128] },
    };
    expect(codeOf(() => parseModelArgs(fp8))).toBe("E_MODEL_UNSUPPORTED");
    expect(() => parseModelArgs(fp8)).toThrow(/quant_method "fp8" is not supported.*mlx-community\/DeepSeek-V3-4bit/);
  });

  test("routing rules and activations this build does not run are refused, naming them", () => {
    expect(() => parseDeepseekArgs({ ...V3_CONFIG, topk_method: "noaux_tc", scoring_func: "softmax" })).toThrow(
      /topk_method "noaux_tc" with scoring_func "softmax"/,
    );
    expect(codeOf(() => parseDeepseekArgs({ ...V3_CONFIG, hidden_act: "gelu" }))).toBe("E_MODEL_UNSUPPORTED");
    expect(codeOf(() => parseDeepseekArgs({ ...V3_CONFIG, n_group: 7 }))).toBe("E_WEIGHTS");
    expect(codeOf(() => parseDeepseekArgs({ ...V3_CONFIG, kv_lora_rank: undefined }))).toBe("E_WEIGHTS");
  });
});

describe("YaRN", () => {
  const s = parseModelArgs(V3_CONFIG).ropeScaling;
  test("high frequencies are kept, low ones divided by the factor, the ramp between is monotone", () => {
    if (s.kind !== "yarn") throw new Error("expected yarn");
    const f = yarnInvFreq(s, 64, 10000);
    const plain = Array.from({ length: 32 }, (_, i) => 1 / 10000 ** ((2 * i) / 64));
    expect(f[0]).toBe(plain[0]!);
    expect(f[31]).toBeCloseTo(plain[31]! / 40, 15);
    const ratio = f.map((x, i) => plain[i]! / x);
    for (let i = 1; i < 32; i++) expect(ratio[i]!).toBeGreaterThanOrEqual(ratio[i - 1]!);
  });

  test("mscale_all_dim scales the softmax by mscale² (V3: (0.1·ln 40 + 1)²)", () => {
    if (s.kind !== "yarn") throw new Error("expected yarn");
    expect(yarnMscale(40, 1)).toBeCloseTo(1.368888, 5);
    expect(yarnAttentionFactor(s)).toBeCloseTo(1.368888 ** 2, 5);
    expect(yarnAttentionFactor({ ...s, mscaleAllDim: 0 })).toBe(1);
  });
});

describe("routers", () => {
  const N = 32;
  const cases: [string, Record<string, unknown>][] = [
    ["V2 softmax greedy", TINY_DEEPSEEK["deepseek_v2-lite"]!],
    ["V2 group_limited_greedy", TINY_DEEPSEEK["deepseek_v2-group-limited"]!],
    ["V3 noaux_tc, several groups", TINY_DEEPSEEK.deepseek_v3!],
    ["Kimi noaux_tc, one group", TINY_DEEPSEEK.kimi_k2!],
  ];
  for (const [label, config] of cases) {
    test(`${label}: same experts and weights as the reference router for ${N} random tokens`, () => {
      const r = parseDeepseekArgs(config).routing!;
      const logits = mx.random.uniform(-2, 2, [N, r.nExperts], mx.float32, mx.random.key(11));
      const bias = mx.random.uniform(-0.2, 0.2, [r.nExperts], mx.float32, mx.random.key(12));
      const { experts: indices, weights } = deepseekRoute(logits, r, bias);
      const ids = indices.tolist() as number[][];
      const ws = weights.tolist() as number[][];
      const rows = logits.tolist() as number[][];
      const b = Float64Array.from(bias.tolist() as number[]);
      for (let t = 0; t < N; t++) {
        const ref = referenceRoute(Float64Array.from(rows[t]!), config, b);
        const mine = ids[t]!.map((e, k) => [e, ws[t]![k]!] as const).sort((x, y) => x[0] - y[0]);
        const theirs = ref.ids.map((e, k) => [e, ref.weights[k]!] as const).sort((x, y) => x[0] - y[0]);
        expect(mine.map(([e]) => e)).toEqual(theirs.map(([e]) => e));
        mine.forEach(([, w], k) => expect(Math.abs(w - theirs[k]![1])).toBeLessThan(1e-5));
      }
    });
  }

  test("noaux_tc: the bias decides which experts, the unbiased scores decide their weights", () => {
    const r = {
      method: "noaux_tc" as const,
      nExperts: 4,
      topK: 2,
      nGroup: 1,
      topkGroup: 1,
      normTopkProb: true,
      routedScalingFactor: 2,
    };
    const logits = mx.array([[3, 2, 1, 0]], mx.float32);
    const { experts: indices, weights } = deepseekRoute(logits, r, mx.array([-10, 0, 0, 10], mx.float32));
    const picked = (indices.tolist() as number[][])[0]!;
    const w = (weights.tolist() as number[][])[0]!;
    const byId = new Map(picked.map((e, k) => [e, w[k]!]));
    expect([...byId.keys()].sort()).toEqual([1, 3]);
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    expect(byId.get(1)!).toBeCloseTo((2 * sig(2)) / (sig(2) + sig(0)), 5);
    expect(byId.get(3)!).toBeCloseTo((2 * sig(0)) / (sig(2) + sig(0)), 5);
  });

  test("noaux_tc groups: experts outside the best groups (by top-2 sum) are never picked", () => {
    // Group 0 holds the single best expert but a weak second; groups 1 and 2 win on their top-2 sums.
    const r = {
      method: "noaux_tc" as const,
      nExperts: 6,
      topK: 2,
      nGroup: 3,
      topkGroup: 2,
      normTopkProb: false,
      routedScalingFactor: 1,
    };
    const logits = mx.array([[5, -5, 2, 2, 1.5, 1.5]], mx.float32);
    const picked = (deepseekRoute(logits, r).experts.tolist() as number[][])[0]!.sort();
    expect(picked).toEqual([2, 3]);
  });
});
