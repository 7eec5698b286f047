// Shared pieces of every architecture: HF config.json → camelCase ModelArgs (the only place snake_case
// keys are read), the shard range and model contract, linears (dense or quantized), RoPE, masks, attention.
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import { DEEPSEEK_MODEL_TYPES, parseDeepseekArgs, type DeepseekArgs } from "./deepseek-config.ts";
import type { KVCache } from "./kv-cache.ts";

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

/** mlx-community affine quantization: per-tensor overrides keyed by module path (false = not quantized). */
export interface QuantizationArgs {
  groupSize: number;
  bits: number;
  overrides: Record<string, { groupSize: number; bits: number } | false>;
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
  /** Gemma2: attention scale is queryPreAttnScalar^-0.5; soft caps; sliding window on even layers. */
  queryPreAttnScalar?: number;
  attnLogitSoftcapping?: number;
  finalLogitSoftcapping?: number;
  slidingWindow?: number;
  /** DeepSeek V2/V3, Kimi K2: latent attention and expert routing (src/models/deepseek-config.ts). */
  deepseek?: DeepseekArgs;
}

/** The layers a stage runs. Half-open: layerStart included, layerEnd excluded. */
export interface ShardRange {
  layerStart: number;
  layerEnd: number;
  nLayers: number;
}

/** One stage of a model: tokens [1,L] (first stage) or hidden [1,L,H] → hidden [1,L,H], or logits [1,V] (last stage). */
export interface ShardModel {
  readonly args: ModelArgs;
  readonly range: ShardRange;
  forward(input: mx.array, cache: KVCache): mx.array;
  /** Per-layer KV geometry of this stage (for createKVCache). */
  readonly cacheSpec: { nLayers: number; nKvHeads: number; headDim: number; valueDim?: number };
}

/** Weights of one stage by HF tensor name (already upcast/dequantized as the device needs). */
export type Weights = Map<string, mx.array>;

type Json = Record<string, unknown>;
const num = (c: Json, key: string, fallback?: number): number => {
  const v = c[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (fallback !== undefined) return fallback;
  throw new NodeError("E_WEIGHTS", `config.json: "${key}" is missing or not a number`);
};

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
    quantization: parseQuantization(config.quantization ?? config.quantization_config),
  };
  if (typeof config.query_pre_attn_scalar === "number") args.queryPreAttnScalar = config.query_pre_attn_scalar;
  if (typeof config.attn_logit_softcapping === "number") args.attnLogitSoftcapping = config.attn_logit_softcapping;
  if (typeof config.final_logit_softcapping === "number") args.finalLogitSoftcapping = config.final_logit_softcapping;
  if (typeof config.sliding_window === "number") args.slidingWindow = config.sliding_window;
  if (DEEPSEEK_MODEL_TYPES.includes(modelType)) args.deepseek = parseDeepseekArgs(config);
  return args;
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

function parseQuantization(raw: unknown): QuantizationArgs | undefined {
  if (raw === null || raw === undefined || typeof raw !== "object") return undefined;
  const q = raw as Json;
  // Only mlx-community's affine blocks are read here; an original FP8 or compressed-tensors checkpoint
  // would otherwise be misread as 4-bit groups of 64.
  if (typeof q.quant_method === "string") {
    throw new NodeError(
      "E_MODEL_UNSUPPORTED",
      `config.json: quantization_config.quant_method "${q.quant_method}" is not supported: this build loads float ` +
        `checkpoints and mlx-community's affine 2-8 bit conversions (for DeepSeek V3, e.g. mlx-community/DeepSeek-V3-4bit)`,
    );
  }
  if (typeof q.mode === "string" && q.mode !== "affine")
    throw new NodeError(
      "E_MODEL_UNSUPPORTED",
      `config.json: quantization mode "${q.mode}" is not supported (affine only)`,
    );
  const overrides: QuantizationArgs["overrides"] = {};
  for (const [key, v] of Object.entries(q)) {
    if (v === false) overrides[key] = false;
    else if (v && typeof v === "object")
      overrides[key] = { groupSize: num(v as Json, "group_size", 64), bits: num(v as Json, "bits", 4) };
  }
  return { groupSize: num(q, "group_size", 64), bits: num(q, "bits", 4), overrides };
}

/** Which tensors a stage needs: its layers; embed on the first stage (and the last when tied); norm + head on the last. */
export function stageWantsTensor(args: ModelArgs, range: ShardRange): (name: string) => boolean {
  const isFirst = range.layerStart === 0;
  const isLast = range.layerEnd === range.nLayers;
  return (name) => {
    if (name.includes("rotary_emb.inv_freq")) return false;
    const m = /^model\.layers\.(\d+)\./.exec(name);
    if (m) {
      const i = Number(m[1]);
      return i >= range.layerStart && i < range.layerEnd;
    }
    if (name.startsWith("model.embed_tokens.")) return isFirst || (isLast && args.tieWordEmbeddings);
    if (name.startsWith("model.norm.")) return isLast;
    if (name.startsWith("lm_head.")) return isLast && !args.tieWordEmbeddings;
    return false;
  };
}

/** A linear layer y = x·Wᵀ (+ b); quantized ones keep packed weights (Metal) and run quantizedMatmul. */
export interface Linear {
  weight: mx.array;
  bias?: mx.array;
  quant?: { scales: mx.array; biases: mx.array; groupSize: number; bits: number };
}

/** Looks up a tensor. @throws E_WEIGHTS naming the missing tensor. */
export function need(w: Weights, name: string): mx.array {
  const t = w.get(name);
  if (!t) throw new NodeError("E_WEIGHTS", `checkpoint has no tensor "${name}" for this stage`);
  return t;
}

/** Builds the Linear stored under `prefix` (prefix.weight, optional .bias, .scales/.biases when quantized). */
export function getLinear(w: Weights, prefix: string, q?: QuantizationArgs): Linear {
  const override = q?.overrides[prefix];
  const groupSize = override ? override.groupSize : (q?.groupSize ?? 64);
  const weight = need(w, `${prefix}.weight`);
  const bias = w.get(`${prefix}.bias`);
  const scales = w.get(`${prefix}.scales`);
  const lin: Linear = { weight };
  if (bias) lin.bias = bias;
  if (scales) {
    const inFeatures = scales.shape[scales.ndim - 1]! * groupSize;
    const bits = (weight.shape[weight.ndim - 1]! * 32) / inFeatures;
    lin.quant = { scales, biases: need(w, `${prefix}.biases`), groupSize, bits };
  }
  return lin;
}

/** x [..., in] → [..., out] through a dense or (Metal) quantized linear. */
export function linear(l: Linear, x: mx.array): mx.array {
  const y = l.quant
    ? mx.quantizedMatmul(x, l.weight, l.quant.scales, l.quant.biases, true, l.quant.groupSize, l.quant.bits)
    : mx.matmul(x, l.weight.T);
  return l.bias ? mx.add(y, l.bias) : y;
}

/** Embedding rows for token ids [B,L] → [B,L,H]; quantized tables dequantize only the rows taken. */
export function embed(table: Linear, tokens: mx.array): mx.array {
  if (!table.quant) return mx.take(table.weight, tokens, 0);
  const q = table.quant;
  return mx.dequantize(
    mx.take(table.weight, tokens, 0),
    mx.take(q.scales, tokens, 0),
    mx.take(q.biases, tokens, 0),
    q.groupSize,
    q.bits,
  );
}

/** RoPE for one model: fast.rope when frequencies are plain, explicit cos/sin when llama3/longrope reshape them. */
export function makeRope(args: ModelArgs, headDim = args.headDim): (x: mx.array, offset: number) => mx.array {
  const dims = Math.round(headDim * args.partialRotaryFactor);
  const s = args.ropeScaling;
  if (s.kind === "none" || s.kind === "linear") {
    const scale = s.kind === "linear" ? 1 / s.factor : 1;
    return (x, offset) => mx.fast.rope(x, dims, args.ropeTraditional, args.ropeTheta, scale, offset);
  }
  if (s.kind === "longrope") {
    // As mlx-lm does: long factors at every length (no mid-request switch), magnitudes scaled by mscale.
    const invFreq = s.longFactor.map((f, i) => 1 / (f * args.ropeTheta ** ((2 * i) / dims)));
    const ratio = args.maxPositionEmbeddings / s.originalMaxPositions;
    const mscale = s.longMscale ?? (ratio <= 1 ? 1 : Math.sqrt(1 + Math.log(ratio) / Math.log(s.originalMaxPositions)));
    return (x, offset) => ropeWithFreqs(x, invFreq, dims, offset, mscale);
  }
  if (s.kind === "yarn")
    throw new NodeError("E_MODEL_UNSUPPORTED", `yarn rope scaling is implemented for the DeepSeek models only`);
  const invFreq = llama3InvFreq(s, args.ropeTheta, dims);
  return (x, offset) => ropeWithFreqs(x, invFreq, dims, offset);
}

function llama3InvFreq(s: Extract<RopeScaling, { kind: "llama3" }>, theta: number, dims: number): number[] {
  const invFreq: number[] = [];
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  for (let i = 0; i < dims / 2; i++) {
    const f = 1 / theta ** ((2 * i) / dims);
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) invFreq.push(f);
    else if (wavelen > lowWavelen) invFreq.push(f / s.factor);
    else {
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      invFreq.push((1 - smooth) * (f / s.factor) + smooth * f);
    }
  }
  return invFreq;
}

/** Non-traditional (rotate-half) RoPE over the first `dims` features with explicit inverse frequencies. */
export function ropeWithFreqs(x: mx.array, invFreq: number[], dims: number, offset: number, mscale = 1): mx.array {
  const L = x.shape[x.ndim - 2]!;
  const D = x.shape[x.ndim - 1]!;
  const half = dims / 2;
  const pos = mx.arange(offset, offset + L, 1, mx.float32).reshape(L, 1);
  const angles = mx.multiply(pos, mx.array(invFreq, mx.float32).reshape(1, half));
  const cos = mx.multiply(mx.cos(angles), mscale).astype(x.dtype);
  const sin = mx.multiply(mx.sin(angles), mscale).astype(x.dtype);
  const S = mx.Slice;
  const x1 = x.index("...", S(0, half));
  const x2 = x.index("...", S(half, dims));
  const parts = [
    mx.subtract(mx.multiply(x1, cos), mx.multiply(x2, sin)),
    mx.add(mx.multiply(x2, cos), mx.multiply(x1, sin)),
  ];
  if (dims < D) parts.push(x.index("...", S(dims, D)));
  return mx.concatenate(parts, -1);
}

/** Additive mask [L, offset+L] for a prefill chunk: causal, optionally limited to a sliding window; in the activations' dtype (Metal). */
export function attentionMask(
  L: number,
  offset: number,
  window?: number,
  dtype: mx.Dtype = mx.float32,
): mx.array | undefined {
  const total = offset + L;
  if (L === 1 && (window === undefined || total <= window)) return undefined;
  const q = mx.arange(offset, total, 1, mx.int32).reshape(L, 1);
  const k = mx.arange(0, total, 1, mx.int32).reshape(1, total);
  let allowed = mx.greaterEqual(q, k);
  if (window !== undefined) allowed = mx.logicalAnd(allowed, mx.less(mx.subtract(q, k), mx.array(window, mx.int32)));
  return mx.where(allowed, mx.array(0, mx.float32), mx.array(-1e9, mx.float32)).astype(dtype);
}

/** [B,L,heads*hd] → [B,heads,L,hd]. */
export function splitHeads(x: mx.array, heads: number, headDim: number): mx.array {
  const [B, L] = x.shape as [number, number];
  return x.reshape(B, L, heads, headDim).transpose(0, 2, 1, 3);
}

/** [B,heads,L,hd] → [B,L,heads*hd]. */
export function mergeHeads(x: mx.array): mx.array {
  const [B, H, L, D] = x.shape as [number, number, number, number];
  return x.transpose(0, 2, 1, 3).reshape(B, L, H * D);
}

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)). */
export function swiglu(gate: mx.array, up: mx.array): mx.array {
  return mx.multiply(mx.multiply(gate, mx.sigmoid(gate)), up);
}

/** What a stage owns besides its layers: the first embeds; the last norms and projects (a tied head is the embedding). */
export interface StageEnds {
  isFirst: boolean;
  isLast: boolean;
  embedTable?: Linear;
  finalNorm?: mx.array;
  head?: Linear;
}

/** Loads the embedding, final norm and head a stage owns. @throws E_WEIGHTS when one is missing. */
export function loadStageEnds(args: ModelArgs, range: ShardRange, w: Weights): StageEnds {
  const quant = args.quantization;
  const isFirst = range.layerStart === 0;
  const isLast = range.layerEnd === range.nLayers;
  const embedTable =
    isFirst || (isLast && args.tieWordEmbeddings) ? getLinear(w, "model.embed_tokens", quant) : undefined;
  const finalNorm = isLast ? need(w, "model.norm.weight") : undefined;
  const head = isLast ? (args.tieWordEmbeddings ? embedTable : getLinear(w, "lm_head", quant)) : undefined;
  return { isFirst, isLast, embedTable, finalNorm, head };
}

/** The last stage's logits for the last position: final norm, head, shaped [batch, vocab]. */
export function headLogits(ends: StageEnds, h: mx.array, args: ModelArgs): mx.array {
  const logits = linear(ends.head!, mx.fast.rmsNorm(lastPosition(h), ends.finalNorm!, args.rmsNormEps));
  return logits.reshape(logits.shape[0]!, args.vocabSize);
}

/** The last position of [B,L,H] as [B,1,H]: logits are computed for it only. */
export function lastPosition(h: mx.array): mx.array {
  const L = h.shape[1]!;
  return L === 1 ? h : h.index(mx.Slice(), mx.Slice(L - 1, L));
}

/** Runs attention through the KV cache: rope at the cache offset, append, fast SDPA (GQA handled by MLX). */
export function cachedAttention(
  q: mx.array,
  k: mx.array,
  v: mx.array,
  opts: {
    cache: KVCache;
    layer: number;
    rope: (x: mx.array, offset: number) => mx.array;
    scale: number;
    mask?: mx.array;
  },
): mx.array {
  const offset = opts.cache.offset(opts.layer);
  const [keys, values] = opts.cache.update(opts.layer, opts.rope(k, offset), v);
  return mx.fast.scaledDotProductAttention(opts.rope(q, offset), keys, values, opts.scale, opts.mask);
}

/** What the registry knows about one model_type. */
export interface Architecture {
  create(args: ModelArgs, range: ShardRange, weights: Weights): ShardModel;
  /** Full-model tensor names → shapes (unquantized), for random checkpoints and checks. */
  tensorShapes(args: ModelArgs): Record<string, number[]>;
  /** Which checkpoint tensors a stage reads. */
  wantsTensor(args: ModelArgs, range: ShardRange): (name: string) => boolean;
}
