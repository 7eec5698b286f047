// Qwen Mixture-of-Experts (qwen3_moe: Qwen3-30B-A3B, Qwen3-235B-A22B, Qwen3-Coder-30B-A3B; qwen2_moe:
// Qwen1.5-MoE, Qwen2-57B-A14B): the Llama/Qwen attention (q/k RMSNorm per head for qwen3_moe, q/k/v bias
// for qwen2_moe) with a routed SwiGLU on sparse layers. Router: softmax over experts → top-k → renormalise
// when norm_topk_prob. qwen2_moe adds an always-on shared expert scaled by sigmoid(shared_expert_gate(x)).
// Dense layers (mlp_only_layers, decoder_sparse_step) keep the plain MLP of intermediate_size.
import { core as mx } from "@frost-beta/mlx";
import { getLinear, linear, type ShardModel, type Weights } from "./base.ts";
import { createLlama, denseMlp, type FeedForward } from "./llama.ts";
import { softmaxTopK } from "./routing.ts";
import { isSparseLayer, type ModelArgs, type MoeArgs, type ShardRange } from "./spec/model-args.ts";
import { loadSwitchGLU, switchGLU } from "./switch-layer.ts";

/** The sparse block of one layer under `${prefix}.mlp`. */
function qwenMoeBlock(w: Weights, prefix: string, args: ModelArgs, moe: MoeArgs): FeedForward {
  const quant = args.quantization;
  const router = getLinear(w, `${prefix}.mlp.gate`, quant);
  const experts = loadSwitchGLU(w, `${prefix}.mlp`, moe.numExperts, quant);
  const shared =
    moe.sharedExpertIntermediateSize > 0
      ? {
          mlp: denseMlp(w, `${prefix}.mlp.shared_expert`, quant),
          gate: getLinear(w, `${prefix}.mlp.shared_expert_gate`, quant),
        }
      : undefined;
  return (x) => {
    const routed = switchGLU(experts, x, softmaxTopK(linear(router, x), moe.numExpertsPerTok, moe.normTopkProb));
    if (!shared) return routed;
    return mx.add(routed, mx.multiply(mx.sigmoid(linear(shared.gate, x)), shared.mlp(x)));
  };
}

function createQwenMoe(args: ModelArgs, range: ShardRange, w: Weights, attention: "qwen3" | "qwen2"): ShardModel {
  const moe = args.moe;
  return createLlama(args, range, w, {
    ...(attention === "qwen3" ? { qkNorm: true } : { qkvBias: true }),
    feedForward: (weights, prefix, index) =>
      moe && isSparseLayer(args, index)
        ? qwenMoeBlock(weights, prefix, args, moe)
        : denseMlp(weights, `${prefix}.mlp`, args.quantization),
  });
}

export function createQwen3Moe(args: ModelArgs, range: ShardRange, w: Weights): ShardModel {
  return createQwenMoe(args, range, w, "qwen3");
}

export function createQwen2Moe(args: ModelArgs, range: ShardRange, w: Weights): ShardModel {
  return createQwenMoe(args, range, w, "qwen2");
}
