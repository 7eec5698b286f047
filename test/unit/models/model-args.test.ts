// config.json parsing and the stage tensor filter: defaults, quantization blocks, rope scaling kinds, and
// errors that name the offending key.
import { describe, expect, test } from "bun:test";
import { isNodeError } from "../../../src/errors.ts";
import { stageTensorFilter } from "../../../src/models/spec/architectures.ts";
import { parseModelArgs } from "../../../src/models/spec/model-args.ts";

const LLAMA = {
  model_type: "llama",
  hidden_size: 64,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 128,
  vocab_size: 100,
};

function codeOf(fn: () => unknown): [string | false, string] {
  try {
    fn();
  } catch (err) {
    return [isNodeError(err) && err.code, (err as Error).message];
  }
  return [false, ""];
}

describe("parseModelArgs", () => {
  test("fills HF defaults: kv heads = heads, head_dim = hidden / heads, untied, no scaling", () => {
    const a = parseModelArgs(LLAMA);
    expect(a).toMatchObject({
      numKeyValueHeads: 4,
      headDim: 16,
      tieWordEmbeddings: false,
      ropeScaling: { kind: "none" },
      partialRotaryFactor: 1,
    });
    expect(a.quantization).toBeUndefined();
  });

  test("reads an mlx-community quantization block with per-module overrides", () => {
    const a = parseModelArgs({
      ...LLAMA,
      quantization: {
        group_size: 32,
        bits: 4,
        "model.layers.0.mlp.down_proj": { group_size: 64, bits: 8 },
        lm_head: false,
      },
    });
    expect(a.quantization).toEqual({
      groupSize: 32,
      bits: 4,
      overrides: { "model.layers.0.mlp.down_proj": { groupSize: 64, bits: 8 }, lm_head: false },
    });
  });

  test("reads llama3, linear and longrope scaling, and refuses unknown kinds naming them", () => {
    const l3 = parseModelArgs({
      ...LLAMA,
      rope_scaling: {
        rope_type: "llama3",
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    });
    expect(l3.ropeScaling).toEqual({
      kind: "llama3",
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    });
    expect(parseModelArgs({ ...LLAMA, rope_scaling: { type: "linear", factor: 2 } }).ropeScaling).toEqual({
      kind: "linear",
      factor: 2,
    });
    expect(
      parseModelArgs({ ...LLAMA, rope_scaling: { type: "su", long_factor: [1, 2], short_factor: [1, 1] } }).ropeScaling
        .kind,
    ).toBe("longrope");
    const [code, message] = codeOf(() => parseModelArgs({ ...LLAMA, rope_scaling: { type: "dynamic", factor: 4 } }));
    expect(code).toBe("E_MODEL_UNSUPPORTED");
    expect(message).toContain('"dynamic"');
  });

  test("a missing size names the key", () => {
    const { hidden_size: _dropped, ...noHidden } = LLAMA;
    const [code, message] = codeOf(() => parseModelArgs(noHidden));
    expect(code).toBe("E_WEIGHTS");
    expect(message).toContain('"hidden_size"');
  });
});

describe("stageTensorFilter", () => {
  const names = [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.1.mlp.down_proj.scales",
    "model.layers.2.input_layernorm.weight",
    "model.layers.3.self_attn.rotary_emb.inv_freq",
    "model.norm.weight",
    "lm_head.weight",
  ];
  const pick = (tie: boolean, layerStart: number, layerEnd: number) =>
    names.filter(
      stageTensorFilter(
        parseModelArgs({ ...LLAMA, tie_word_embeddings: tie }),
        { layerStart, layerEnd, nLayers: 4 },
        names,
      ),
    );

  test("first, middle and last stages of an untied model read disjoint sets", () => {
    expect(pick(false, 0, 1)).toEqual(["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight"]);
    expect(pick(false, 1, 3)).toEqual(["model.layers.1.mlp.down_proj.scales", "model.layers.2.input_layernorm.weight"]);
    expect(pick(false, 3, 4)).toEqual(["model.norm.weight", "lm_head.weight"]);
  });

  test("the last stage of a tied model reads the embedding instead of lm_head", () => {
    expect(pick(true, 3, 4)).toEqual(["model.embed_tokens.weight", "model.norm.weight"]);
    expect(pick(true, 0, 4)).toEqual(names.filter((n) => !n.includes("inv_freq") && n !== "lm_head.weight"));
  });
});
