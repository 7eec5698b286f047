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
  swiglu,
  type Linear,
  type ShardModel,
  type Weights,
} from "./base.ts";
import type { KVCache } from "./kv-cache.ts";
import { createLatentAttention, type AbsorbMode, type LatentAttention } from "./latent-attention.ts";
import { deepseekRoute } from "./routing.ts";
import { isMoeLayer, latentCacheValuesPerToken, type DeepseekArgs } from "./spec/deepseek-args.ts";
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";
import { loadSwitchGLU, switchGLU, type SwitchGLU } from "./switch-layer.ts";

interface Dense {
  gate: Linear;
  up: Linear;
  down: Linear;
}

interface Moe {
  router: Linear;
  correctionBias?: mx.array;
  experts: SwitchGLU;
  shared?: Dense;
}

interface Layer {
  inputNorm: mx.array;
  postNorm: mx.array;
  attn: LatentAttention;
  dense?: Dense;
  moe?: Moe;
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
  const dense = (p: string): Dense => ({
    gate: getLinear(w, `${p}.gate_proj`, quant),
    up: getLinear(w, `${p}.up_proj`, quant),
    down: getLinear(w, `${p}.down_proj`, quant),
  });
  const layers: Layer[] = [];
  for (let i = range.layerStart; i < range.layerEnd; i++) {
    const p = `model.layers.${i}`;
    const layer: Layer = {
      inputNorm: need(w, `${p}.input_layernorm.weight`),
      postNorm: need(w, `${p}.post_attention_layernorm.weight`),
      attn: createLatentAttention(args, d, w, `${p}.self_attn`),
    };
    if (isMoeLayer(d, i)) {
      const moe: Moe = {
        router: getLinear(w, `${p}.mlp.gate`, quant),
        experts: loadSwitchGLU(w, `${p}.mlp`, d.routing!.nExperts, quant),
      };
      const bias = w.get(`${p}.mlp.gate.e_score_correction_bias`);
      if (d.routing!.method === "noaux_tc")
        moe.correctionBias = bias ?? need(w, `${p}.mlp.gate.e_score_correction_bias`);
      if (d.nSharedExperts > 0) moe.shared = dense(`${p}.mlp.shared_experts`);
      layer.moe = moe;
    } else layer.dense = dense(`${p}.mlp`);
    layers.push(layer);
  }
  const eps = args.rmsNormEps;
  const ffn = (f: Dense, x: mx.array) => linear(f.down, swiglu(linear(f.gate, x), linear(f.up, x)));

  function moeBlock(m: Moe, x: mx.array): mx.array {
    const [B, L, H] = x.shape as [number, number, number];
    const flat = x.reshape(B * L, H);
    // The router runs in float32 whatever the activations are (the correction bias is float32 too).
    const logits = linear(m.router, flat.astype(mx.float32));
    const routed = switchGLU(m.experts, flat, deepseekRoute(logits, d.routing!, m.correctionBias));
    const y = m.shared ? mx.add(routed, ffn(m.shared, flat)) : routed;
    return y.reshape(B, L, H);
  }

  function block(layer: Layer, x: mx.array, mask: mx.array | undefined, cache: KVCache, idx: number): mx.array {
    const n = mx.fast.rmsNorm(x, layer.inputNorm, eps);
    const h = mx.add(x, layer.attn.forward(n, cache, idx, mask, opts.absorb));
    const m = mx.fast.rmsNorm(h, layer.postNorm, eps);
    return mx.add(h, layer.moe ? moeBlock(layer.moe, m) : ffn(layer.dense!, m));
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
