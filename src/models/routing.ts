// Routers: small functions from a layer's router logits [T, E] to a Routing (expert ids and combine
// weights per token) for ./switch-layer.ts. One per family; stateless, so a test can check each against a
// hand computation. They stay in MLX (no read back into JS): decode must not sync (mlx-notes §11).
import { core as mx } from "@frost-beta/mlx";
import type { RoutingArgs } from "./spec/deepseek-args.ts";
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

/**
 * DeepSeek's routers on float32 logits [T, E]: V2's softmax `greedy` and `group_limited_greedy` (groups
 * ranked by their best expert), V3/Kimi's `noaux_tc` (sigmoid; `bias`, the e_score_correction_bias, is added
 * for the choice only; groups ranked by the sum of their top 2). Weights come from the unbiased scores.
 */
export function deepseekRoute(logits: mx.array, r: RoutingArgs, bias?: mx.array): Routing {
  const sigmoid = r.method === "noaux_tc";
  const scores = sigmoid ? mx.sigmoid(logits) : mx.softmax(logits, -1, true);
  let choice = sigmoid && bias ? mx.add(scores, bias.astype(mx.float32)) : scores;
  if (r.method !== "greedy" && r.topkGroup < r.nGroup) choice = dropWeakGroups(choice, r, sigmoid ? "top2" : "max");
  const experts = topKIndices(choice, r.topK);
  let weights = mx.takeAlongAxis(scores, experts, -1);
  const normalise = r.topK > 1 && r.normTopkProb;
  if (normalise) weights = mx.divide(weights, mx.add(mx.sum(weights, -1, true), 1e-20));
  // V3 scales always; V2 scales only the weights it did not renormalise (DeepSeek's own code differs so).
  if (sigmoid || !normalise) weights = mx.multiply(weights, r.routedScalingFactor);
  return { experts, weights };
}

/** Zeroes the scores of the nGroup - topkGroup weakest groups (as the reference code masks them: with 0). */
function dropWeakGroups(choice: mx.array, r: RoutingArgs, rank: "top2" | "max"): mx.array {
  const T = choice.shape[0]!;
  const per = r.nExperts / r.nGroup;
  const grouped = choice.reshape(T, r.nGroup, per);
  const groupScore =
    rank === "max"
      ? mx.max(grouped, -1)
      : mx.sum(mx.sort(grouped, -1).index("...", mx.Slice(Math.max(0, per - 2), per)), -1);
  const nDrop = r.nGroup - r.topkGroup;
  const dropped = mx.argpartition(groupScore, nDrop - 1, -1).index("...", mx.Slice(0, nDrop));
  // One-hot of the dropped groups: [T, nDrop, 1] == [1, 1, nGroup] → any over nDrop → [T, nGroup].
  const groupIds = mx.arange(0, r.nGroup, 1, mx.uint32).reshape(1, 1, r.nGroup);
  const isDropped = mx.any(mx.equal(mx.expandDims(dropped, [-1]), groupIds), 1);
  const masked = mx.where(mx.expandDims(isDropped, [-1]), mx.array(0, mx.float32), grouped);
  return masked.reshape(T, r.nExperts);
}
