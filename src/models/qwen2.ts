// Qwen2 (Qwen 2.5, R1-distill-Qwen): the Llama block with a bias on the q/k/v projections.
import type { ModelArgs, ShardModel, ShardRange, Weights } from "./base.ts";
import { createLlama, llamaTensorShapes } from "./llama.ts";

export function createQwen2(args: ModelArgs, range: ShardRange, weights: Weights): ShardModel {
  return createLlama(args, range, weights, { qkvBias: true });
}

export function qwen2TensorShapes(args: ModelArgs): Record<string, number[]> {
  return llamaTensorShapes(args, { qkvBias: true });
}
