// Gemma 2: embeddings scaled by sqrt(hidden), (1+w) RMSNorm, norms before and after attention and MLP,
// GELU(tanh) gated MLP, attention and final-logit soft-capping, sliding-window attention on even layers.
import { core as mx } from "@frost-beta/mlx";
import {
  attentionMask,
  embed,
  getLinear,
  lastPosition,
  linear,
  makeRope,
  mergeHeads,
  need,
  splitHeads,
  type Linear,
  type ShardModel,
  type Weights,
} from "./base.ts";
import type { KVCache } from "./kv-cache.ts";
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";

interface Layer {
  index: number;
  inputNorm: mx.array;
  postAttnNorm: mx.array;
  preFfnNorm: mx.array;
  postFfnNorm: mx.array;
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  gate: Linear;
  up: Linear;
  down: Linear;
}

/** Gemma always ties the head to the embedding. */
const tied = (args: ModelArgs): ModelArgs => ({ ...args, tieWordEmbeddings: true });

/** Gemma's norm scales by (1 + w); precomputed once at load. */
const onePlus = (w: mx.array) => mx.add(w, 1);

function softcap(x: mx.array, cap: number | undefined): mx.array {
  return cap ? mx.multiply(mx.tanh(mx.divide(x, cap)), cap) : x;
}

function geluTanh(x: mx.array): mx.array {
  const inner = mx.multiply(mx.add(x, mx.multiply(mx.power(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
  return mx.multiply(mx.multiply(x, 0.5), mx.add(mx.tanh(inner), 1));
}

/** Creates one stage of a Gemma 2 model. @throws E_WEIGHTS when a tensor is missing. */
export function createGemma2(rawArgs: ModelArgs, range: ShardRange, w: Weights): ShardModel {
  const args = tied(rawArgs);
  const quant = args.quantization;
  const isFirst = range.layerStart === 0;
  const isLast = range.layerEnd === range.nLayers;
  const layers: Layer[] = [];
  for (let i = range.layerStart; i < range.layerEnd; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      index: i,
      inputNorm: onePlus(need(w, `${p}.input_layernorm.weight`)),
      postAttnNorm: onePlus(need(w, `${p}.post_attention_layernorm.weight`)),
      preFfnNorm: onePlus(need(w, `${p}.pre_feedforward_layernorm.weight`)),
      postFfnNorm: onePlus(need(w, `${p}.post_feedforward_layernorm.weight`)),
      q: getLinear(w, `${p}.self_attn.q_proj`, quant),
      k: getLinear(w, `${p}.self_attn.k_proj`, quant),
      v: getLinear(w, `${p}.self_attn.v_proj`, quant),
      o: getLinear(w, `${p}.self_attn.o_proj`, quant),
      gate: getLinear(w, `${p}.mlp.gate_proj`, quant),
      up: getLinear(w, `${p}.mlp.up_proj`, quant),
      down: getLinear(w, `${p}.mlp.down_proj`, quant),
    });
  }
  const embedTable = isFirst || isLast ? getLinear(w, "model.embed_tokens", quant) : undefined;
  const finalNorm = isLast ? onePlus(need(w, "model.norm.weight")) : undefined;
  const rope = makeRope(args);
  const { numAttentionHeads: nH, numKeyValueHeads: nKv, headDim: D, rmsNormEps: eps } = args;
  const scale = (args.queryPreAttnScalar ?? D) ** -0.5;
  const rep = nH / nKv;

  function attention(layer: Layer, x: mx.array, mask: mx.array | undefined, cache: KVCache, idx: number): mx.array {
    const [B, L] = x.shape as [number, number];
    const offset = cache.offset(idx);
    const q = rope(splitHeads(linear(layer.q, x), nH, D), offset);
    const [keys, values] = cache.update(
      idx,
      rope(splitHeads(linear(layer.k, x), nKv, D), offset),
      splitHeads(linear(layer.v, x), nKv, D),
    );
    // Soft-capping sits between the scores and the softmax, so fast SDPA cannot be used here.
    const q5 = mx.multiply(q, scale).reshape(B, nKv, rep, L, D);
    let scores = softcap(mx.matmul(q5, mx.expandDims(keys, 2).swapaxes(-1, -2)), args.attnLogitSoftcapping);
    if (mask) scores = mx.add(scores, mask);
    const out = mx.matmul(mx.softmax(scores, -1, true), mx.expandDims(values, 2));
    return linear(layer.o, mergeHeads(out.reshape(B, nH, L, D)));
  }

  return {
    args,
    range,
    cacheSpec: { nLayers: layers.length, nKvHeads: nKv, headDim: D },
    forward(input, cache) {
      let h = isFirst ? mx.multiply(embed(embedTable!, input), Math.sqrt(args.hiddenSize)) : input;
      const L = h.shape[1]!;
      const offset = cache.offset(0);
      const fullMask = attentionMask(L, offset, undefined, h.dtype);
      const windowMask = args.slidingWindow ? attentionMask(L, offset, args.slidingWindow, h.dtype) : fullMask;
      layers.forEach((layer, idx) => {
        const mask = layer.index % 2 === 0 ? windowMask : fullMask;
        const r = attention(layer, mx.fast.rmsNorm(h, layer.inputNorm, eps), mask, cache, idx);
        h = mx.add(h, mx.fast.rmsNorm(r, layer.postAttnNorm, eps));
        const m = mx.fast.rmsNorm(h, layer.preFfnNorm, eps);
        const f = linear(layer.down, mx.multiply(geluTanh(linear(layer.gate, m)), linear(layer.up, m)));
        h = mx.add(h, mx.fast.rmsNorm(f, layer.postFfnNorm, eps));
      });
      if (!isLast) return h;
      const logits = softcap(
        linear(embedTable!, mx.fast.rmsNorm(lastPosition(h), finalNorm!, eps)),
        args.finalLogitSoftcapping,
      );
      return logits.reshape(logits.shape[0]!, args.vocabSize);
    },
  };
}
