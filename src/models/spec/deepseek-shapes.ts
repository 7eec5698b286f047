// DeepSeek V2/V3 and Kimi K2 checkpoint layout (pure): tensor names → shapes, for random checkpoints and
// parameter counts. The multi-token-prediction layer sits at index num_hidden_layers, outside every stage's
// range, so the one ownership rule (./ownership.ts) never downloads or loads it.
import { isMoeLayer } from "./deepseek-args.ts";
import type { ModelArgs } from "./model-args.ts";
import type { TensorShapes } from "./tensor-shapes.ts";

/**
 * Full-model tensor shapes in Hugging Face's layout (one tensor per expert; the random-checkpoint writer
 * stacks them into mlx-community's switch_mlp on request, the loader does so at load).
 * With `num_nextn_predict_layers` the multi-token-prediction layer's own tensors are added at index
 * num_hidden_layers, as the original checkpoints carry them.
 */
export function deepseekTensorShapes(args: ModelArgs): TensorShapes {
  const d = args.deepseek;
  if (!d) throw new Error(`${args.modelType}: DeepSeek fields were not parsed`);
  const { hiddenSize: H, numAttentionHeads: nH, intermediateSize: I, vocabSize: V } = args;
  const qk = d.qkNopeHeadDim + d.qkRopeHeadDim;
  const out: TensorShapes = { "model.embed_tokens.weight": [V, H], "model.norm.weight": [H] };
  if (!args.tieWordEmbeddings) out["lm_head.weight"] = [V, H];
  const swigluShapes = (p: string, inner: number) => {
    out[`${p}.gate_proj.weight`] = [inner, H];
    out[`${p}.up_proj.weight`] = [inner, H];
    out[`${p}.down_proj.weight`] = [H, inner];
  };
  for (let i = 0; i < args.numHiddenLayers; i++) {
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    out[`${p}.input_layernorm.weight`] = [H];
    out[`${p}.post_attention_layernorm.weight`] = [H];
    if (d.qLoraRank === undefined) out[`${a}.q_proj.weight`] = [nH * qk, H];
    else {
      out[`${a}.q_a_proj.weight`] = [d.qLoraRank, H];
      out[`${a}.q_a_layernorm.weight`] = [d.qLoraRank];
      out[`${a}.q_b_proj.weight`] = [nH * qk, d.qLoraRank];
    }
    out[`${a}.kv_a_proj_with_mqa.weight`] = [d.kvLoraRank + d.qkRopeHeadDim, H];
    out[`${a}.kv_a_layernorm.weight`] = [d.kvLoraRank];
    out[`${a}.kv_b_proj.weight`] = [nH * (d.qkNopeHeadDim + d.vHeadDim), d.kvLoraRank];
    out[`${a}.o_proj.weight`] = [H, nH * d.vHeadDim];
    if (isMoeLayer(d, i)) {
      const r = d.routing!;
      out[`${p}.mlp.gate.weight`] = [r.nExperts, H];
      if (r.method === "noaux_tc") out[`${p}.mlp.gate.e_score_correction_bias`] = [r.nExperts];
      for (let e = 0; e < r.nExperts; e++) swigluShapes(`${p}.mlp.experts.${e}`, d.moeIntermediateSize);
      if (d.nSharedExperts > 0) swigluShapes(`${p}.mlp.shared_experts`, d.moeIntermediateSize * d.nSharedExperts);
    } else swigluShapes(`${p}.mlp`, I);
  }
  for (let m = 0; m < d.mtpLayers; m++) {
    const p = `model.layers.${args.numHiddenLayers + m}`;
    Object.assign(out, {
      [`${p}.enorm.weight`]: [H],
      [`${p}.hnorm.weight`]: [H],
      [`${p}.eh_proj.weight`]: [H, 2 * H],
      [`${p}.shared_head.norm.weight`]: [H],
      [`${p}.input_layernorm.weight`]: [H],
    });
  }
  return out;
}
