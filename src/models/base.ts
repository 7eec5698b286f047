// The MLX pieces every architecture shares: the stage contract, linears (dense or quantized), RoPE, masks,
// attention, the stage's embedding/norm/head. What a config means (ModelArgs, quantization, which tensors a
// stage owns) is pure knowledge in ./spec/, which the download, catalog and placement code read as well.
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import { CacheBatch, perRowAttention, type AttentionCache } from "./cache-batch.ts";
import type { KVCache } from "./kv-cache.ts";
import type { ModelArgs, RopeScaling, ShardRange } from "./spec/model-args.ts";
import { quantParamsOf, type QuantizationArgs } from "./spec/quantization.ts";

/** One stage of a model: tokens [1,L] (first stage) or hidden [1,L,H] → hidden [1,L,H], or logits [1,V] (last stage). */
export interface ShardModel {
  readonly args: ModelArgs;
  readonly range: ShardRange;
  forward(input: mx.array, cache: KVCache): mx.array;
  /**
   * One decode step of B requests: tokens [B,1] (first stage) or hidden [B,1,H] → hidden [B,1,H] or logits
   * [B,V], caches[b] being row b's. Absent on architectures that decode one request at a time.
   */
  forwardBatch?(input: mx.array, caches: readonly KVCache[]): mx.array;
  /** Per-layer KV geometry of this stage (for createKVCache). */
  readonly cacheSpec: { nLayers: number; nKvHeads: number; headDim: number; valueDim?: number };
}

/** Weights of one stage by HF tensor name (already upcast/dequantized as the device needs). */
export type Weights = Map<string, mx.array>;

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
  const weight = need(w, `${prefix}.weight`);
  const bias = w.get(`${prefix}.bias`);
  const scales = w.get(`${prefix}.scales`);
  const lin: Linear = { weight };
  if (bias) lin.bias = bias;
  if (scales) {
    const { groupSize, bits } = quantParamsOf(q, prefix, weight.shape, scales.shape);
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
    cache: AttentionCache;
    layer: number;
    rope: (x: mx.array, offset: number) => mx.array;
    scale: number;
    mask?: mx.array;
  },
): mx.array {
  const attend = (q: mx.array, k: mx.array, v: mx.array, cache: KVCache, mask?: mx.array) => {
    const offset = cache.offset(opts.layer);
    if (q.shape[2] === 1 && mask === undefined) {
      // Decode: the whole cache buffer under a length mask, so the next write stays in place (kv-cache.ts).
      const d = cache.updateDecode(opts.layer, opts.rope(k, offset), v);
      return mx.fast.scaledDotProductAttention(opts.rope(q, offset), d.keys, d.values, opts.scale, d.mask);
    }
    const [keys, values] = cache.update(opts.layer, opts.rope(k, offset), v);
    return mx.fast.scaledDotProductAttention(opts.rope(q, offset), keys, values, opts.scale, mask);
  };
  // A batch is decode only (one position per row, so no mask): see cache-batch.ts.
  if (opts.cache instanceof CacheBatch) return perRowAttention(opts.cache, q, k, v, attend);
  return attend(q, k, v, opts.cache, opts.mask);
}

/** Builds one stage of a model_type from its weights (the MLX half of an architecture; ./spec/ has the rest). */
export type BuildStage = (args: ModelArgs, range: ShardRange, weights: Weights) => ShardModel;
