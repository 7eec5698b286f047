// Routers: small functions from a layer's router logits [T, E] to a Routing (expert ids and combine
// weights per token) for ./switch-layer.ts. One per family; stateless, so a test can check each against a
// hand computation. They stay in MLX (no read back into JS): decode must not sync (mlx-notes §11).
import { core as mx } from "@frost-beta/mlx";
import type { Routing } from "./switch-layer.ts";

/** Ids of the k largest entries along the last axis of `scores` [..., E] → [..., k] uint32 (order within the k unspecified). */
export function topKIndices(scores: mx.array, k: number): mx.array {
  // node-mlx 0.0.7's topk returns values only: partition the negated scores instead.
  const all = mx.argpartition(mx.negative(scores), k - 1, -1);
  return all.index("...", mx.Slice(0, k));
}

/**
 * Qwen-MoE (qwen3_moe, qwen2_moe) and Mixtral-style routing: softmax over all experts in float32, the
 * top k, their probabilities as weights, renormalised to sum to 1 when `normTopkProb`.
 */
export function softmaxTopK(logits: mx.array, k: number, normTopkProb: boolean): Routing {
  const probs = mx.softmax(logits.astype(mx.float32), -1, true);
  const experts = topKIndices(probs, k);
  let weights = mx.takeAlongAxis(probs, experts, -1);
  if (normTopkProb) weights = mx.divide(weights, mx.sum(weights, -1, true));
  return { experts, weights };
}
