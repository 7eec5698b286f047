// Llama architecture (also mistral, and the base of qwen2/qwen3): RMSNorm, RoPE (llama3 scaling), GQA, SwiGLU.
// Builds only the layers of its half-open range; first stage embeds, last stage norms and projects to logits.
import { core as mx } from "@frost-beta/mlx";
import {
  attentionMask,
  cachedAttention,
  embed,
  getLinear,
  headLogits,
  loadStageEnds,
  linear,
  makeRope,
  mergeHeads,
  need,
  splitHeads,
  swiglu,
  type Linear,
  type ShardModel,
  type Weights,
} from "./base.ts";
import { CacheBatch, type AttentionCache } from "./cache-batch.ts";
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";
import type { QuantizationArgs } from "./spec/quantization.ts";

/** A layer's feed-forward: normed hidden [B, L, H] → [B, L, H]. */
export type FeedForward = (x: mx.array) => mx.array;

export interface LlamaOptions {
  /** Qwen3: RMSNorm over each head of q and k before RoPE. */
  qkNorm?: boolean;
  /** Qwen2: q/k/v projections carry a bias (checked at load so a wrong checkpoint fails early). */
  qkvBias?: boolean;
  /** The feed-forward of layer `index` (weights under `${prefix}.mlp`); default the dense SwiGLU MLP. MoE families route here. */
  feedForward?: (w: Weights, prefix: string, index: number) => FeedForward;
}

/** The dense SwiGLU MLP under `mlpPrefix` (`….mlp`, or a shared expert): down(silu(gate(x)) · up(x)). */
export function denseMlp(w: Weights, mlpPrefix: string, quant?: QuantizationArgs): FeedForward {
  const gate = getLinear(w, `${mlpPrefix}.gate_proj`, quant);
  const up = getLinear(w, `${mlpPrefix}.up_proj`, quant);
  const down = getLinear(w, `${mlpPrefix}.down_proj`, quant);
  return (x) => linear(down, swiglu(linear(gate, x), linear(up, x)));
}

interface Layer {
  inputNorm: mx.array;
  postNorm: mx.array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  qNorm?: mx.array;
  kNorm?: mx.array;
  mlp: FeedForward;
}

/** Creates one stage of a Llama-family model from its weights. @throws E_WEIGHTS when a tensor is missing. */
export function createLlama(args: ModelArgs, range: ShardRange, w: Weights, opts: LlamaOptions = {}): ShardModel {
  const quant = args.quantization;
  const ends = loadStageEnds(args, range, w);
  const layers: Layer[] = [];
  for (let i = range.layerStart; i < range.layerEnd; i++) {
    const p = `model.layers.${i}`;
    const layer: Layer = {
      inputNorm: need(w, `${p}.input_layernorm.weight`),
      postNorm: need(w, `${p}.post_attention_layernorm.weight`),
      q: getLinear(w, `${p}.self_attn.q_proj`, quant),
      k: getLinear(w, `${p}.self_attn.k_proj`, quant),
      v: getLinear(w, `${p}.self_attn.v_proj`, quant),
      o: getLinear(w, `${p}.self_attn.o_proj`, quant),
      mlp: opts.feedForward ? opts.feedForward(w, p, i) : denseMlp(w, `${p}.mlp`, quant),
    };
    if (opts.qkNorm) {
      layer.qNorm = need(w, `${p}.self_attn.q_norm.weight`);
      layer.kNorm = need(w, `${p}.self_attn.k_norm.weight`);
    }
    if (opts.qkvBias) for (const n of ["q_proj", "k_proj", "v_proj"]) need(w, `${p}.self_attn.${n}.bias`);
    layers.push(layer);
  }
  const rope = makeRope(args);
  const scale = 1 / Math.sqrt(args.headDim);
  const eps = args.rmsNormEps;

  function block(layer: Layer, x: mx.array, mask: mx.array | undefined, cache: AttentionCache, idx: number): mx.array {
    const n = mx.fast.rmsNorm(x, layer.inputNorm, eps);
    let q = splitHeads(linear(layer.q, n), args.numAttentionHeads, args.headDim);
    let k = splitHeads(linear(layer.k, n), args.numKeyValueHeads, args.headDim);
    const v = splitHeads(linear(layer.v, n), args.numKeyValueHeads, args.headDim);
    if (layer.qNorm && layer.kNorm) {
      q = mx.fast.rmsNorm(q, layer.qNorm, eps);
      k = mx.fast.rmsNorm(k, layer.kNorm, eps);
    }
    const attn = cachedAttention(q, k, v, { cache, layer: idx, rope, scale, mask });
    const h = mx.add(x, linear(layer.o, mergeHeads(attn)));
    const m = mx.fast.rmsNorm(h, layer.postNorm, eps);
    return mx.add(h, layer.mlp(m));
  }

  function run(input: mx.array, mask: mx.array | undefined, cache: AttentionCache): mx.array {
    let h = input;
    layers.forEach((layer, i) => {
      h = block(layer, h, mask, cache, i);
    });
    return ends.isLast ? headLogits(ends, h, args) : h;
  }

  return {
    args,
    range,
    cacheSpec: { nLayers: layers.length, nKvHeads: args.numKeyValueHeads, headDim: args.headDim },
    forward(input, cache) {
      const h = ends.isFirst ? embed(ends.embedTable!, input) : input;
      return run(h, attentionMask(h.shape[1]!, cache.offset(0), undefined, h.dtype), cache);
    },
    forwardBatch(input, caches) {
      return run(ends.isFirst ? embed(ends.embedTable!, input) : input, undefined, new CacheBatch(caches));
    },
  };
}
