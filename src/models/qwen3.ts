// Qwen3 (dense): the Llama block with an RMSNorm over each head of q and k before RoPE; head_dim from config.
import type { ModelArgs, ShardModel, ShardRange, Weights } from "./base.ts";
import { createLlama, llamaTensorShapes } from "./llama.ts";

export function createQwen3(args: ModelArgs, range: ShardRange, weights: Weights): ShardModel {
  return createLlama(args, range, weights, { qkNorm: true });
}

export function qwen3TensorShapes(args: ModelArgs): Record<string, number[]> {
  return llamaTensorShapes(args, { qkNorm: true });
}
