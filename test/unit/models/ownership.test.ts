// The pure model knowledge the download selection and the loader share: which stage owns a tensor, the
// expert naming the loader stacks by, and mlx-community quantization blocks with per-path overrides.
import { describe, expect, test } from "bun:test";
import { isNodeError } from "../../../src/errors.ts";
import { expertSlot, isExpertTensor } from "../../../src/models/spec/experts.ts";
import { isSparseLayer, parseModelArgs } from "../../../src/models/spec/model-args.ts";
import { headIsTied, stageOwnsTensor, tensorRole } from "../../../src/models/spec/ownership.ts";
import { parseQuantizationBlock, quantParamsOf } from "../../../src/models/spec/quantization.ts";

describe("tensor ownership", () => {
  test("classifies layer, embedding, final norm, head, rotary buffers and anything else", () => {
    expect(tensorRole("model.layers.12.mlp.experts.3.up_proj.weight")).toEqual({ kind: "layer", layer: 12 });
    expect(tensorRole("model.layers.0.mlp.switch_mlp.gate_proj.scales")).toEqual({ kind: "layer", layer: 0 });
    expect(tensorRole("language_model.model.layers.3.self_attn.k_proj.biases")).toEqual({ kind: "layer", layer: 3 });
    expect(tensorRole("model.embed_tokens.weight").kind).toBe("embedding");
    expect(tensorRole("model.norm.weight").kind).toBe("final-norm");
    expect(tensorRole("lm_head.weight").kind).toBe("head");
    expect(tensorRole("model.layers.1.self_attn.rotary_emb.inv_freq").kind).toBe("ignored");
    expect(tensorRole("vision_tower.blocks_proj.weight").kind).toBe("other");
  });

  test("first, middle and last stages own disjoint tensors that together cover the model", () => {
    const names = [
      "model.embed_tokens.weight",
      "vision_tower.patch.weight",
      "model.layers.0.mlp.gate.weight",
      "model.layers.1.mlp.experts.0.down_proj.weight",
      "model.layers.2.mlp.switch_mlp.up_proj.weight",
      "model.layers.3.input_layernorm.weight",
      "model.norm.weight",
      "lm_head.weight",
    ];
    const owned = (a: number, b: number) =>
      names.filter(stageOwnsTensor({ layerStart: a, layerEnd: b, nLayers: 4, tiedHead: false }));
    expect(owned(0, 1)).toEqual([
      "model.embed_tokens.weight",
      "vision_tower.patch.weight",
      "model.layers.0.mlp.gate.weight",
    ]);
    expect(owned(1, 3)).toEqual([
      "model.layers.1.mlp.experts.0.down_proj.weight",
      "model.layers.2.mlp.switch_mlp.up_proj.weight",
    ]);
    expect(owned(3, 4)).toEqual(["model.layers.3.input_layernorm.weight", "model.norm.weight", "lm_head.weight"]);
    expect(names.filter(stageOwnsTensor({ layerStart: 3, layerEnd: 4, nLayers: 4, tiedHead: true }))).toEqual([
      "model.embed_tokens.weight",
      "model.layers.3.input_layernorm.weight",
      "model.norm.weight",
    ]);
  });

  test("the head is tied when config.json says so or the checkpoint has no lm_head", () => {
    expect(headIsTied(false, ["model.embed_tokens.weight", "lm_head.weight"])).toBe(false);
    expect(headIsTied(false, ["model.embed_tokens.weight", "model.norm.weight"])).toBe(true);
    expect(headIsTied(true, ["lm_head.weight"])).toBe(true);
  });
});

describe("experts", () => {
  test("a per-expert tensor names its stack and slot; stacks and per-expert tensors are experts", () => {
    expect(expertSlot("model.layers.7.mlp.experts.101.down_proj.scales")).toEqual({
      stacked: "model.layers.7.mlp.switch_mlp.down_proj.scales",
      expert: 101,
    });
    expect(expertSlot("model.layers.7.mlp.shared_expert.down_proj.weight")).toBeUndefined();
    expect(expertSlot("model.layers.7.mlp.gate.weight")).toBeUndefined();
    expect(isExpertTensor("model.layers.7.mlp.switch_mlp.up_proj")).toBe(true);
    expect(isExpertTensor("model.layers.7.mlp.shared_expert.up_proj")).toBe(false);
  });

  test("sparse layers follow decoder_sparse_step and mlp_only_layers", () => {
    const args = parseModelArgs({
      model_type: "qwen2_moe",
      hidden_size: 8,
      num_hidden_layers: 6,
      num_attention_heads: 2,
      intermediate_size: 16,
      vocab_size: 10,
      num_experts: 4,
      num_experts_per_tok: 2,
      moe_intermediate_size: 4,
      decoder_sparse_step: 2,
      mlp_only_layers: [3],
    });
    expect([0, 1, 2, 3, 4, 5].filter((i) => isSparseLayer(args, i))).toEqual([1, 5]);
  });

  test("a config asking for more experts per token than it has is refused, naming both", () => {
    try {
      parseModelArgs({
        model_type: "qwen3_moe",
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        vocab_size: 10,
        num_experts: 4,
        num_experts_per_tok: 6,
        moe_intermediate_size: 4,
      });
      throw new Error("accepted");
    } catch (err) {
      expect(isNodeError(err) && err.code).toBe("E_WEIGHTS");
      expect((err as Error).message).toContain("num_experts_per_tok 6 is not in [1, num_experts 4]");
    }
  });
});

describe("quantization block", () => {
  test("global settings, per-path overrides (routers at 8 bits) and paths left in floats", () => {
    const q = parseQuantizationBlock({
      group_size: 64,
      bits: 4,
      "model.layers.0.mlp.gate": { group_size: 64, bits: 8 },
      lm_head: false,
    })!;
    expect(q).toEqual({
      groupSize: 64,
      bits: 4,
      overrides: { "model.layers.0.mlp.gate": { groupSize: 64, bits: 8 }, lm_head: false },
    });
    // Bits come from how many words hold a row: 128 experts x 2048 inputs at 8 bits = 512 words.
    expect(quantParamsOf(q, "model.layers.0.mlp.gate", [128, 512], [128, 32])).toEqual({ groupSize: 64, bits: 8 });
    expect(quantParamsOf(q, "model.layers.0.mlp.switch_mlp.up_proj", [128, 768, 256], [128, 768, 32])).toEqual({
      groupSize: 64,
      bits: 4,
    });
    expect(() => quantParamsOf(q, "x", [4, 100], [4, 32])).toThrow(/does not fit group size 64/);
  });
});
