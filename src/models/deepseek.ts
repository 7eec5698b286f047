// DeepSeek V2 / V3 (and Kimi K2, the same network): latent attention (latent-attention.ts), a dense SwiGLU
// in the first `first_k_dense_replace` layers (and off the `moe_layer_freq` grid), elsewhere routed experts
// (routing.ts) plus always-on shared experts. Builds only the layers of its half-open range.
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import {
  attentionMask,
  embed,
  getLinear,
  headLogits,
  linear,
  loadStageEnds,
  need,
  type ShardModel,
  type Weights,
} from "./base.ts";
import type { KVCache } from "./kv-cache.ts";
import { createLatentAttention, type AbsorbMode, type LatentAttention } from "./latent-attention.ts";
import { denseMlp, type FeedForward } from "./llama.ts";
import { deepseekRoute } from "./routing.ts";
import { isMoeLayer, latentCacheValuesPerToken, type DeepseekArgs } from "./spec/deepseek-args.ts";
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";
import { loadSwitchGLU, switchGLU, type SwitchGLU } from "./switch-layer.ts";

interface Layer {
  inputNorm: mx.array;
  postNorm: mx.array;
  attn: LatentAttention;
  feedForward: FeedForward;
}

export interface DeepseekOptions {
  /** Latent attention form (default: absorbed for single-token steps). */
  absorb?: AbsorbMode;
}

function deepseekArgs(args: ModelArgs): DeepseekArgs {
  if (!args.deepseek) throw new NodeError("E_INTERNAL", `${args.modelType}: DeepSeek fields were not parsed`);
  return args.deepseek;
}

/** Creates one stage of a DeepSeek-family model. @throws E_WEIGHTS when a tensor is missing. */
export function createDeepseek(args: ModelArgs, range: ShardRange, w: Weights, opts: DeepseekOptions = {}): ShardModel {
  const d = deepseekArgs(args);
  const quant = args.quantization;
  const ends = loadStageEnds(args, range, w);
  const eps = args.rmsNormEps;

  /** Routed experts (router in float32, like its correction bias) plus the always-on shared experts. */
  function moeBlock(p: string): FeedForward {
    const routing = d.routing!;
    const router = getLinear(w, `${p}.mlp.gate`, quant);
    const experts: SwitchGLU = loadSwitchGLU(w, `${p}.mlp`, routing.nExperts, quant);
    const bias = routing.method === "noaux_tc" ? need(w, `${p}.mlp.gate.e_score_correction_bias`) : undefined;
    const shared = d.nSharedExperts > 0 ? denseMlp(w, `${p}.mlp.shared_experts`, quant) : undefined;
    return (x) => {
      const [B, L, H] = x.shape as [number, number, number];
      const flat = x.reshape(B * L, H);
      const logits = linear(router, flat.astype(mx.float32));
      const routed = switchGLU(experts, flat, deepseekRoute(logits, routing, bias));
      return (shared ? mx.add(routed, shared(flat)) : routed).reshape(B, L, H);
    };
  }

  const layers: Layer[] = [];
  for (let i = range.layerStart; i < range.layerEnd; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      inputNorm: need(w, `${p}.input_layernorm.weight`),
      postNorm: need(w, `${p}.post_attention_layernorm.weight`),
      attn: createLatentAttention(args, d, w, `${p}.self_attn`),
      feedForward: isMoeLayer(d, i) ? moeBlock(p) : denseMlp(w, `${p}.mlp`, quant),
    });
  }

  function block(layer: Layer, x: mx.array, mask: mx.array | undefined, cache: KVCache, idx: number): mx.array {
    const n = mx.fast.rmsNorm(x, layer.inputNorm, eps);
    const h = mx.add(x, layer.attn.forward(n, cache, idx, mask, opts.absorb));
    const m = mx.fast.rmsNorm(h, layer.postNorm, eps);
    return mx.add(h, layer.feedForward(m));
  }

  return {
    args,
    range,
    cacheSpec: { nLayers: layers.length, nKvHeads: 1, headDim: latentCacheValuesPerToken(d), valueDim: 0 },
    forward(input, cache) {
      let h = ends.isFirst ? embed(ends.embedTable!, input) : input;
      const mask = attentionMask(h.shape[1]!, cache.offset(0), undefined, h.dtype);
      layers.forEach((layer, i) => {
        h = block(layer, h, mask, cache, i);
      });
      return ends.isLast ? headLogits(ends, h, args) : h;
    },
  };
}
