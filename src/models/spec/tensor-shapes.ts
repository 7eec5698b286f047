// Full-model tensor names → shapes (unquantized, Hugging Face layout) per architecture family: random
// checkpoints are written from them and placement counts parameters with them. Pure.
import { isSparseLayer, type ModelArgs } from "./model-args.ts";

export type TensorShapes = Record<string, number[]>;

export interface LlamaShapeOptions {
  /** Qwen3: an RMSNorm weight over each head of q and k. */
  qkNorm?: boolean;
  /** Qwen2: a bias on the q/k/v projections. */
  qkvBias?: boolean;
}

/** Embedding, final norm and (untied) head. */
function stageEnds(args: ModelArgs, alwaysTied = false): TensorShapes {
  const { hiddenSize: H, vocabSize: V } = args;
  const out: TensorShapes = { "model.embed_tokens.weight": [V, H], "model.norm.weight": [H] };
  if (!args.tieWordEmbeddings && !alwaysTied) out["lm_head.weight"] = [V, H];
  return out;
}

function attention(args: ModelArgs, p: string, opts: LlamaShapeOptions): TensorShapes {
  const { hiddenSize: H, headDim: D, numAttentionHeads: nH, numKeyValueHeads: nKv } = args;
  const out: TensorShapes = {
    [`${p}.self_attn.q_proj.weight`]: [nH * D, H],
    [`${p}.self_attn.k_proj.weight`]: [nKv * D, H],
    [`${p}.self_attn.v_proj.weight`]: [nKv * D, H],
    [`${p}.self_attn.o_proj.weight`]: [H, nH * D],
  };
  if (opts.qkvBias) {
    out[`${p}.self_attn.q_proj.bias`] = [nH * D];
    out[`${p}.self_attn.k_proj.bias`] = [nKv * D];
    out[`${p}.self_attn.v_proj.bias`] = [nKv * D];
  }
  if (opts.qkNorm) {
    out[`${p}.self_attn.q_norm.weight`] = [D];
    out[`${p}.self_attn.k_norm.weight`] = [D];
  }
  return out;
}

/** SwiGLU gate/up/down under `p` (a dense MLP, one expert, or the shared expert). */
function swigluShapes(p: string, H: number, I: number): TensorShapes {
  return { [`${p}.gate_proj.weight`]: [I, H], [`${p}.up_proj.weight`]: [I, H], [`${p}.down_proj.weight`]: [H, I] };
}

export function llamaTensorShapes(args: ModelArgs, opts: LlamaShapeOptions = {}): TensorShapes {
  const H = args.hiddenSize;
  const out = stageEnds(args);
  for (let i = 0; i < args.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    Object.assign(out, {
      [`${p}.input_layernorm.weight`]: [H],
      [`${p}.post_attention_layernorm.weight`]: [H],
      ...attention(args, p, opts),
      ...swigluShapes(`${p}.mlp`, H, args.intermediateSize),
    });
  }
  return out;
}

/**
 * qwen3_moe / qwen2_moe, as Hugging Face stores them: sparse layers hold a router `mlp.gate` [E, H] and
 * one SwiGLU per expert `mlp.experts.{e}.*` (qwen2_moe adds `mlp.shared_expert.*` and its sigmoid gate
 * `mlp.shared_expert_gate` [1, H]); dense layers (mlp_only_layers, decoder_sparse_step) keep `mlp.*_proj`.
 */
export function moeTensorShapes(args: ModelArgs, opts: LlamaShapeOptions = {}): TensorShapes {
  const H = args.hiddenSize;
  const moe = args.moe;
  const out = stageEnds(args);
  for (let i = 0; i < args.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    Object.assign(out, {
      [`${p}.input_layernorm.weight`]: [H],
      [`${p}.post_attention_layernorm.weight`]: [H],
      ...attention(args, p, opts),
    });
    if (!moe || !isSparseLayer(args, i)) {
      Object.assign(out, swigluShapes(`${p}.mlp`, H, args.intermediateSize));
      continue;
    }
    out[`${p}.mlp.gate.weight`] = [moe.numExperts, H];
    for (let e = 0; e < moe.numExperts; e++)
      Object.assign(out, swigluShapes(`${p}.mlp.experts.${e}`, H, moe.moeIntermediateSize));
    if (moe.sharedExpertIntermediateSize > 0) {
      Object.assign(out, swigluShapes(`${p}.mlp.shared_expert`, H, moe.sharedExpertIntermediateSize));
      out[`${p}.mlp.shared_expert_gate.weight`] = [1, H];
    }
  }
  return out;
}

export function phi3TensorShapes(args: ModelArgs): TensorShapes {
  const { hiddenSize: H, headDim: D, numAttentionHeads: nH, numKeyValueHeads: nKv, intermediateSize: I } = args;
  const out = stageEnds(args);
  for (let i = 0; i < args.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    Object.assign(out, {
      [`${p}.input_layernorm.weight`]: [H],
      [`${p}.post_attention_layernorm.weight`]: [H],
      [`${p}.self_attn.qkv_proj.weight`]: [(nH + 2 * nKv) * D, H],
      [`${p}.self_attn.o_proj.weight`]: [H, nH * D],
      [`${p}.mlp.gate_up_proj.weight`]: [2 * I, H],
      [`${p}.mlp.down_proj.weight`]: [H, I],
    });
  }
  return out;
}

/** Gemma 2: always tied, four norms per layer. */
export function gemma2TensorShapes(args: ModelArgs): TensorShapes {
  const H = args.hiddenSize;
  const out = stageEnds(args, true);
  for (let i = 0; i < args.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    for (const n of [
      "input_layernorm",
      "post_attention_layernorm",
      "pre_feedforward_layernorm",
      "post_feedforward_layernorm",
    ])
      out[`${p}.${n}.weight`] = [H];
    Object.assign(out, attention(args, p, {}), swigluShapes(`${p}.mlp`, H, args.intermediateSize));
  }
  return out;
}
