// Sizing models before download: parameters split into experts and the rest, stored bytes with per-path
// quantization, and what a CPU node holds per stored byte (experts packed, the rest float32).
import { describe, expect, test } from "bun:test";
import { findModel, loadCatalog } from "../../../src/catalog/catalog.ts";
import { describeConfig } from "../../../src/models/spec/describe.ts";
import {
  cpuBytesPerStoredByte,
  expertShare,
  parameterCounts,
  storedWeightBytes,
} from "../../../src/models/spec/footprint.ts";
import { parseModelArgs } from "../../../src/models/spec/model-args.ts";

/** Qwen/Qwen3-30B-A3B's config.json (the keys sizing reads). */
const QWEN3_30B_A3B = {
  model_type: "qwen3_moe",
  hidden_size: 2048,
  intermediate_size: 6144,
  num_hidden_layers: 48,
  num_attention_heads: 32,
  num_key_value_heads: 4,
  head_dim: 128,
  vocab_size: 151936,
  num_experts: 128,
  num_experts_per_tok: 8,
  moe_intermediate_size: 768,
  norm_topk_prob: true,
  decoder_sparse_step: 1,
  mlp_only_layers: [],
  tie_word_embeddings: false,
};

describe("model footprint", () => {
  test("Qwen3-30B-A3B: 30.5B parameters in all (its model card), 95% of them in the 128 experts of 48 layers", () => {
    const { experts, other } = parameterCounts(parseModelArgs(QWEN3_30B_A3B));
    expect(experts).toBe(48 * 128 * 3 * 2048 * 768);
    expect((experts + other) / 1e9).toBeCloseTo(30.53, 2);
    expect(expertShare(parseModelArgs(QWEN3_30B_A3B))).toBeCloseTo(0.9495, 3);
    // The catalog's rows carry the share counted from this config.
    for (const id of ["qwen-3-30b-a3b", "qwen-3-30b-a3b-8bit", "qwen-3-coder-30b-4bit"])
      expect(findModel(loadCatalog(), id)?.expertShare).toBeCloseTo(expertShare(parseModelArgs(QWEN3_30B_A3B)), 3);
  });

  test("stored bytes follow the quantization block, its per-path overrides included", () => {
    const q4 = storedWeightBytes(parseModelArgs({ ...QWEN3_30B_A3B, quantization: { group_size: 64, bits: 4 } }));
    // mlx-community/Qwen3-30B-A3B-4bit is 17,612,931,072 bytes (exo's model card): within 3%.
    expect(Math.abs(q4 / 17_612_931_072 - 1)).toBeLessThan(0.03);
    const routers8 = Object.fromEntries(
      Array.from({ length: 48 }, (_, i) => [`model.layers.${i}.mlp.gate`, { group_size: 64, bits: 8 }]),
    );
    const mixed = storedWeightBytes(
      parseModelArgs({ ...QWEN3_30B_A3B, quantization: { group_size: 64, bits: 4, ...routers8 } }),
    );
    expect(mixed - q4).toBe((48 * 128 * 2048 * 4) / 8);
    const dense = storedWeightBytes(parseModelArgs(QWEN3_30B_A3B));
    expect(dense / q4).toBeGreaterThan(3.4);
  });

  test("a CPU node holds packed 2/4/8-bit experts at bits + 1 and everything else as float32", () => {
    expect(cpuBytesPerStoredByte("4bit")).toBeCloseTo(32 / 4.5, 6);
    expect(cpuBytesPerStoredByte("bf16", 0.95)).toBe(2);
    expect(cpuBytesPerStoredByte("3bit", 0.95)).toBeCloseTo(32 / 3.5, 6);
    expect(cpuBytesPerStoredByte("4bit", 0.95)).toBeCloseTo((0.95 * 5 + 0.05 * 32) / 4.5, 6);
  });

  test("describeConfig sizes the architectures this build runs and leaves others unsized", () => {
    const d = describeConfig({ ...QWEN3_30B_A3B, quantization: { group_size: 64, bits: 4 } });
    expect(d).toMatchObject({ layers: 48, arch: "qwen3_moe", quantization: "4bit" });
    expect(d.expertShare).toBeCloseTo(0.9495, 3);
    expect(d.sizeBytes).toBeGreaterThan(16e9);
    expect(describeConfig({ model_type: "mamba", num_hidden_layers: 4 })).toEqual({ layers: 4, arch: "mamba" });
  });
});
