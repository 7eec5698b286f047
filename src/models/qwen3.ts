// Qwen3 (dense): the Llama block with an RMSNorm over each head of q and k before RoPE; head_dim from config.
import type { ShardModel, Weights } from "./base.ts";
import { createLlama } from "./llama.ts";
import type { ModelArgs, ShardRange } from "./spec/model-args.ts";

export function createQwen3(args: ModelArgs, range: ShardRange, weights: Weights): ShardModel {
  return createLlama(args, range, weights, { qkNorm: true });
}
