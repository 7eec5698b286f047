// Phi-3 / Phi-3.5 / Phi-4: a Llama-like block with fused qkv_proj and gate_up_proj (split after the matmul),
// optional partial rotary and longrope scaling (handled by makeRope).
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
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";

interface Layer {
  inputNorm: mx.array;
  postNorm: mx.array;
  qkv: Linear;
  o: Linear;
  gateUp: Linear;
  down: Linear;
}

/** Creates one stage of a Phi-3 model. @throws E_WEIGHTS when a tensor is missing. */
export function createPhi3(args: ModelArgs, range: ShardRange, w: Weights): ShardModel {
  const quant = args.quantization;
  const ends = loadStageEnds(args, range, w);
  const layers: Layer[] = [];
  for (let i = range.layerStart; i < range.layerEnd; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      inputNorm: need(w, `${p}.input_layernorm.weight`),
      postNorm: need(w, `${p}.post_attention_layernorm.weight`),
      qkv: getLinear(w, `${p}.self_attn.qkv_proj`, quant),
      o: getLinear(w, `${p}.self_attn.o_proj`, quant),
      gateUp: getLinear(w, `${p}.mlp.gate_up_proj`, quant),
      down: getLinear(w, `${p}.mlp.down_proj`, quant),
    });
  }
  const rope = makeRope(args);
  const { numAttentionHeads: nH, numKeyValueHeads: nKv, headDim: D, intermediateSize: I, rmsNormEps: eps } = args;
  const scale = 1 / Math.sqrt(D);
  const S = mx.Slice;

  return {
    args,
    range,
    cacheSpec: { nLayers: layers.length, nKvHeads: nKv, headDim: D },
    forward(input, cache) {
      let h = ends.isFirst ? embed(ends.embedTable!, input) : input;
      const mask = attentionMask(h.shape[1]!, cache.offset(0), undefined, h.dtype);
      layers.forEach((layer, idx) => {
        const qkv = linear(layer.qkv, mx.fast.rmsNorm(h, layer.inputNorm, eps));
        const q = splitHeads(qkv.index("...", S(0, nH * D)), nH, D);
        const k = splitHeads(qkv.index("...", S(nH * D, (nH + nKv) * D)), nKv, D);
        const v = splitHeads(qkv.index("...", S((nH + nKv) * D, (nH + 2 * nKv) * D)), nKv, D);
        const attn = cachedAttention(q, k, v, { cache, layer: idx, rope, scale, mask });
        h = mx.add(h, linear(layer.o, mergeHeads(attn)));
        const gu = linear(layer.gateUp, mx.fast.rmsNorm(h, layer.postNorm, eps));
        h = mx.add(h, linear(layer.down, swiglu(gu.index("...", S(0, I)), gu.index("...", S(I, 2 * I)))));
      });
      return ends.isLast ? headLogits(ends, h, args) : h;
    },
  };
}
