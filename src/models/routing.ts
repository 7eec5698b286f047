// DeepSeek's expert routers as small functions of the router logits (MLX, no sync to JS):
// V2 softmax `greedy` and `group_limited_greedy`, V3/Kimi `noaux_tc` (sigmoid, correction bias for the
// choice only, groups ranked by their top-2 sum). They return which experts each token uses and with what weight.
import { core as mx } from "@frost-beta/mlx";
import type { RoutingArgs } from "./spec/deepseek-args.ts";

export interface Routes {
  /** [N, topK] uint32 expert ids. */
  indices: mx.array;
  /** [N, topK] float32 weights, in the order of `indices`. */
  weights: mx.array;
}

/** Routes N tokens from float32 logits [N, nExperts]; `bias` is noaux_tc's e_score_correction_bias [nExperts]. */
export function routeTokens(logits: mx.array, r: RoutingArgs, bias?: mx.array): Routes {
  const sigmoid = r.method === "noaux_tc";
  const scores = sigmoid ? mx.sigmoid(logits) : mx.softmax(logits, -1, true);
  let choice = sigmoid && bias ? mx.add(scores, bias.astype(mx.float32)) : scores;
  if (r.method !== "greedy" && r.topkGroup < r.nGroup) choice = dropWeakGroups(choice, r, sigmoid ? "top2" : "max");
  const indices = topIndices(choice, r.topK);
  let weights = mx.takeAlongAxis(scores, indices, -1);
  const normalise = r.topK > 1 && r.normTopkProb;
  if (normalise) weights = mx.divide(weights, mx.add(mx.sum(weights, -1, true), 1e-20));
  // V3 scales always; V2 scales only the weights it did not renormalise (DeepSeek's own code differs so).
  if (sigmoid || !normalise) weights = mx.multiply(weights, r.routedScalingFactor);
  return { indices, weights };
}

/** Indices of the k largest values along the last axis (any order). */
export function topIndices(x: mx.array, k: number): mx.array {
  return mx.argpartition(mx.negative(x), k - 1, -1).index("...", mx.Slice(0, k));
}

/** Zeroes the scores of the nGroup - topkGroup weakest groups (as the reference code masks them: with 0). */
function dropWeakGroups(choice: mx.array, r: RoutingArgs, rank: "top2" | "max"): mx.array {
  const N = choice.shape[0]!;
  const per = r.nExperts / r.nGroup;
  const grouped = choice.reshape(N, r.nGroup, per);
  const groupScore =
    rank === "max"
      ? mx.max(grouped, -1)
      : mx.sum(mx.sort(grouped, -1).index("...", mx.Slice(Math.max(0, per - 2), per)), -1);
  const nDrop = r.nGroup - r.topkGroup;
  const dropped = mx.argpartition(groupScore, nDrop - 1, -1).index("...", mx.Slice(0, nDrop));
  // One-hot of the dropped groups: [N, nDrop, 1] == [1, 1, nGroup] → any over nDrop → [N, nGroup].
  const groupIds = mx.arange(0, r.nGroup, 1, mx.uint32).reshape(1, 1, r.nGroup);
  const isDropped = mx.any(mx.equal(mx.expandDims(dropped, [-1]), groupIds), 1);
  const masked = mx.where(mx.expandDims(isDropped, [-1]), mx.array(0, mx.float32), grouped);
  return masked.reshape(N, r.nExperts);
}
