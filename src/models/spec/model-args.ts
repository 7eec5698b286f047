// HF config.json → camelCase ModelArgs: the only place snake_case config keys become model arguments.
// Pure and MLX-free, so download selection, the catalog and placement read configs the way the engine does.
import { NodeError } from "../../errors.ts";
import type { LayerRange } from "../../topology/types.ts";
import { DEEPSEEK_MODEL_TYPES, parseDeepseekArgs, type DeepseekArgs } from "./deepseek-args.ts";
import { parseQuantizationBlock, type QuantizationArgs } from "./quantization.ts";

/** Rotary scaling variants we implement; anything else is refused at parse time. */
export type RopeScaling =
  | { kind: "none" }
  | { kind: "linear"; factor: number }
  | { kind: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  /** Phi-3.5 "longrope"/"su": per-frequency long factors and an attention magnitude scale. */
  | { kind: "longrope"; longFactor: number[]; originalMaxPositions: number; longMscale?: number }
  /** DeepSeek's YaRN: interpolated low frequencies, and magnitude scales on cos/sin and on the attention scale. */
  | {
      kind: "yarn";
      factor: number;
      originalMaxPositions: number;
      betaFast: number;
      betaSlow: number;
      mscale: number;
      mscaleAllDim: number;
    };

/** Mixture-of-Experts arguments (qwen3_moe, qwen2_moe); absent for dense models. */
export interface MoeArgs {
  numExperts: number;
  /** Experts each token is routed to (top-k). */
  numExpertsPerTok: number;
  /** Hidden size of one routed expert's SwiGLU. */
  moeIntermediateSize: number;
  /** Renormalise the top-k router probabilities to sum to 1. */
  normTopkProb: boolean;
  /** Every `decoderSparseStep`-th layer is sparse (layer i is sparse when (i + 1) % step === 0)... */
  decoderSparseStep: number;
  /** ...unless it is listed here: these layers keep the dense MLP of `intermediateSize`. */
  mlpOnlyLayers: readonly number[];
  /** qwen2_moe: hidden size of the always-on shared expert (0 = none). */
  sharedExpertIntermediateSize: number;
}

export interface ModelArgs {
  modelType: string;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeTraditional: boolean;
  ropeScaling: RopeScaling;
  /** Fraction of head_dim that is rotated (phi-style partial rotary); 1 = all. */
  partialRotaryFactor: number;
  tieWordEmbeddings: boolean;
  attentionBias: boolean;
  maxPositionEmbeddings: number;
  quantization?: QuantizationArgs;
  moe?: MoeArgs;
  /** Gemma2: attention scale is queryPreAttnScalar^-0.5; soft caps; sliding window on even layers. */
  queryPreAttnScalar?: number;
  attnLogitSoftcapping?: number;
  finalLogitSoftcapping?: number;
  slidingWindow?: number;
  /** DeepSeek V2/V3, Kimi K2: latent attention and expert routing (./deepseek-args.ts). */
  deepseek?: DeepseekArgs;
}

/** The layers [layerStart, layerEnd) a stage runs, of a model's nLayers. */
export interface ShardRange extends LayerRange {
  nLayers: number;
}

export type Json = Record<string, unknown>;

/** A finite number under `key`, else the fallback. @throws E_WEIGHTS when missing without a fallback. */
export function num(c: Json, key: string, fallback?: number): number {
  const v = c[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (fallback !== undefined) return fallback;
  throw new NodeError("E_WEIGHTS", `config.json: "${key}" is missing or not a number`);
}

/** Parses HF config.json once into ModelArgs. @throws E_WEIGHTS (missing key), E_MODEL_UNSUPPORTED (rope scaling kind). */
export function parseModelArgs(config: Json): ModelArgs {
  const modelType = typeof config.model_type === "string" ? config.model_type : "";
  if (!modelType) throw new NodeError("E_WEIGHTS", `config.json: "model_type" is missing`);
  const hiddenSize = num(config, "hidden_size");
  const numAttentionHeads = num(config, "num_attention_heads");
  const args: ModelArgs = {
    modelType,
    hiddenSize,
    numHiddenLayers: num(config, "num_hidden_layers"),
    numAttentionHeads,
    numKeyValueHeads: num(config, "num_key_value_heads", numAttentionHeads),
    headDim: num(config, "head_dim", hiddenSize / numAttentionHeads),
    intermediateSize: num(config, "intermediate_size"),
    vocabSize: num(config, "vocab_size"),
    rmsNormEps: num(config, "rms_norm_eps", 1e-6),
    ropeTheta: num(config, "rope_theta", 10000),
    ropeTraditional: config.rope_traditional === true,
    ropeScaling: parseRopeScaling(config.rope_scaling),
    partialRotaryFactor: num(config, "partial_rotary_factor", 1),
    tieWordEmbeddings: config.tie_word_embeddings === true,
    attentionBias: config.attention_bias === true,
    maxPositionEmbeddings: num(config, "max_position_embeddings", 131072),
    quantization: parseQuantizationBlock(config.quantization ?? config.quantization_config),
  };
  const moe = parseMoe(config);
  if (moe) args.moe = moe;
  if (typeof config.query_pre_attn_scalar === "number") args.queryPreAttnScalar = config.query_pre_attn_scalar;
  if (typeof config.attn_logit_softcapping === "number") args.attnLogitSoftcapping = config.attn_logit_softcapping;
  if (typeof config.final_logit_softcapping === "number") args.finalLogitSoftcapping = config.final_logit_softcapping;
  if (typeof config.sliding_window === "number") args.slidingWindow = config.sliding_window;
  if (DEEPSEEK_MODEL_TYPES.includes(modelType)) args.deepseek = parseDeepseekArgs(config);
  return args;
}

/** True when layer `i` routes through experts (qwen*_moe rule: every step-th layer, minus mlp_only_layers). */
export function isSparseLayer(args: ModelArgs, i: number): boolean {
  const moe = args.moe;
  if (!moe || moe.numExperts === 0) return false;
  return !moe.mlpOnlyLayers.includes(i) && (i + 1) % moe.decoderSparseStep === 0;
}

function parseMoe(config: Json): MoeArgs | undefined {
  // qwen3_moe / qwen2_moe name the expert count num_experts; a dense config has none.
  if (typeof config.num_experts !== "number" || config.num_experts <= 0) return undefined;
  const only = config.mlp_only_layers;
  if (only !== undefined && !(Array.isArray(only) && only.every((i) => Number.isInteger(i))))
    throw new NodeError("E_WEIGHTS", `config.json: "mlp_only_layers" must be a list of layer indices`);
  const moe: MoeArgs = {
    numExperts: num(config, "num_experts"),
    numExpertsPerTok: num(config, "num_experts_per_tok"),
    moeIntermediateSize: num(config, "moe_intermediate_size"),
    normTopkProb: config.norm_topk_prob === true,
    decoderSparseStep: num(config, "decoder_sparse_step", 1),
    mlpOnlyLayers: (only as number[] | undefined) ?? [],
    sharedExpertIntermediateSize: num(config, "shared_expert_intermediate_size", 0),
  };
  if (moe.numExpertsPerTok < 1 || moe.numExpertsPerTok > moe.numExperts)
    throw new NodeError(
      "E_WEIGHTS",
      `config.json: num_experts_per_tok ${moe.numExpertsPerTok} is not in [1, num_experts ${moe.numExperts}]`,
    );
  if (!Number.isInteger(moe.decoderSparseStep) || moe.decoderSparseStep < 1)
    throw new NodeError("E_WEIGHTS", `config.json: decoder_sparse_step must be a positive integer`);
  return moe;
}

function parseRopeScaling(raw: unknown): RopeScaling {
  if (raw === null || raw === undefined || typeof raw !== "object") return { kind: "none" };
  const r = raw as Json;
  const kind = String(r.rope_type ?? r.type ?? "default");
  if (kind === "default") return { kind: "none" };
  if (kind === "linear") return { kind: "linear", factor: num(r, "factor") };
  if (kind === "llama3") {
    return {
      kind: "llama3",
      factor: num(r, "factor"),
      lowFreqFactor: num(r, "low_freq_factor", 1),
      highFreqFactor: num(r, "high_freq_factor", 4),
      originalMaxPositions: num(r, "original_max_position_embeddings", 8192),
    };
  }
  if ((kind === "longrope" || kind === "su") && Array.isArray(r.long_factor)) {
    const scaling: RopeScaling = {
      kind: "longrope",
      longFactor: r.long_factor as number[],
      originalMaxPositions: num(r, "original_max_position_embeddings", 4096),
    };
    if (typeof r.long_mscale === "number") scaling.longMscale = r.long_mscale;
    return scaling;
  }
  if (kind === "yarn") {
    return {
      kind: "yarn",
      factor: num(r, "factor"),
      originalMaxPositions: num(r, "original_max_position_embeddings", 4096),
      betaFast: num(r, "beta_fast", 32),
      betaSlow: num(r, "beta_slow", 1),
      mscale: num(r, "mscale", 1),
      mscaleAllDim: num(r, "mscale_all_dim", 0),
    };
  }
  throw new NodeError(
    "E_MODEL_UNSUPPORTED",
    `rope_scaling type "${kind}" is not supported (supported: default, linear, llama3, longrope, yarn)`,
  );
}
