// Tiny configs for every supported architecture and a loader that builds one stage through the real
// weight loader: the model tests share them (hidden 64, 4 layers, vocab 128).
import { getArchitecture } from "../../src/models/index.ts";
import type { ShardModel } from "../../src/models/base.ts";
import { stageTensorFilter } from "../../src/models/spec/architectures.ts";
import { readConfigFile } from "../../src/models/spec/config-file.ts";
import { parseModelArgs } from "../../src/models/spec/model-args.ts";
import { checkpointIndex, loadShardWeights } from "../../src/engine/weights.ts";

const BASE = {
  hidden_size: 64,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
  vocab_size: 128,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 256,
};

/** A plain Llama (no rope scaling, untied head): the engine and runner tests' checkpoint. */
export const PLAIN_LLAMA: Record<string, unknown> = {
  ...BASE,
  model_type: "llama",
  rope_theta: 10000,
  tie_word_embeddings: false,
};

/** One config per architecture, each exercising that architecture's particular features. */
export const TINY_CONFIGS: Record<string, Record<string, unknown>> = {
  llama: {
    ...BASE,
    model_type: "llama",
    rope_theta: 500000,
    tie_word_embeddings: false,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 16,
    },
  },
  mistral: { ...BASE, model_type: "mistral", rope_theta: 1000000, tie_word_embeddings: false, head_dim: 24 },
  qwen2: { ...BASE, model_type: "qwen2", rope_theta: 1000000, tie_word_embeddings: true },
  qwen3: { ...BASE, model_type: "qwen3", rope_theta: 1000000, tie_word_embeddings: true, head_dim: 32 },
  phi3: {
    ...BASE,
    model_type: "phi3",
    rope_theta: 10000,
    tie_word_embeddings: false,
    max_position_embeddings: 1024,
    rope_scaling: {
      type: "longrope",
      long_factor: [1, 1.5, 2, 3, 4, 6, 8, 12],
      short_factor: [1, 1, 1, 1, 1, 1, 1, 1],
      original_max_position_embeddings: 64,
    },
  },
  gemma2: {
    ...BASE,
    model_type: "gemma2",
    head_dim: 32,
    rope_theta: 10000,
    query_pre_attn_scalar: 32,
    attn_logit_softcapping: 50,
    final_logit_softcapping: 30,
    sliding_window: 4,
    tie_word_embeddings: true,
  },
  qwen3_moe: {
    ...BASE,
    model_type: "qwen3_moe",
    head_dim: 16,
    rope_theta: 1000000,
    tie_word_embeddings: false,
    num_experts: 8,
    num_experts_per_tok: 3,
    moe_intermediate_size: 32,
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    // Layer 1 keeps the dense MLP of intermediate_size: a dense layer among sparse ones.
    mlp_only_layers: [1],
  },
  qwen2_moe: {
    ...BASE,
    model_type: "qwen2_moe",
    rope_theta: 1000000,
    tie_word_embeddings: false,
    num_experts: 6,
    num_experts_per_tok: 2,
    moe_intermediate_size: 32,
    shared_expert_intermediate_size: 64,
    norm_topk_prob: false,
    // Every second layer is sparse (layers 1 and 3).
    decoder_sparse_step: 2,
    mlp_only_layers: [],
  },
};

/** Builds stage [layerStart, layerEnd) of the checkpoint in `dir` through loadShardWeights. */
export async function loadStage(
  dir: string,
  layerStart: number,
  layerEnd: number,
): Promise<{ model: ShardModel; tensorsRead: string[]; files: string[] }> {
  const args = parseModelArgs(await readConfigFile(dir));
  const range = { layerStart, layerEnd, nLayers: args.numHiddenLayers };
  const arch = getArchitecture(args.modelType);
  const loaded = await loadShardWeights(dir, stageTensorFilter(args, range, checkpointIndex(dir).keys()), {
    native: false,
    quantization: args.quantization,
  });
  return { model: arch.create(args, range, loaded.weights), tensorsRead: loaded.tensorsRead, files: loaded.files };
}
