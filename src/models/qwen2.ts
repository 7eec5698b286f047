// Qwen2 (Qwen 2.5, R1-distill-Qwen): the Llama block with a bias on the q/k/v projections.
import type { ShardModel, Weights } from "./base.ts";
import { createLlama } from "./llama.ts";
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";

export function createQwen2(args: ModelArgs, range: ShardRange, weights: Weights): ShardModel {
  return createLlama(args, range, weights, { qkvBias: true });
}
