// How much memory placement keeps free per layer for the KV cache, by architecture (pure). Latent attention
// caches one latent and one rope key per token (576 values in every released DeepSeek V2/V2.5/V3/R1 and
// Kimi K2), far less than grouped-query attention, so its headroom is sized from that, not guessed.
import { DEEPSEEK_MODEL_TYPES, latentCacheValuesPerToken } from "./deepseek-args.ts";
import type { ModelArgs } from "./model-args.ts";

/** kv_lora_rank 512 + qk_rope_head_dim 64: the released models' latent, known before config.json is fetched. */
export const RELEASED_LATENT_VALUES_PER_TOKEN = 576;

/** Context length placement budgets the cache for. */
export const PLANNED_CONTEXT_TOKENS = 32768;

/**
 * Bytes per layer to keep free for the cache, or undefined to keep placement's default (1/8 of a layer's
 * weights, for attention whose cache size depends on config.json). Counted at 2 bytes a value: the cache's
 * bf16 on Metal; a CPU node's float32 cache is smaller than that in placement's units, which shrink a CPU
 * node's memory by its float32 expansion of the weights.
 */
export function kvHeadroomBytesPerLayer(arch: string | undefined): number | undefined {
  if (arch === undefined || !DEEPSEEK_MODEL_TYPES.includes(arch)) return undefined;
  return RELEASED_LATENT_VALUES_PER_TOKEN * 2 * PLANNED_CONTEXT_TOKENS;
}

/**
 * Bytes one token of context takes in the KV cache over every layer of the model, at 2 bytes a value as above:
 * a key and a value per KV head (grouped-query attention), or latent attention's latent + rope key. Sliding
 * windows are ignored (an overestimate). The coordinator's admission counts requests in these (issue 14).
 */
export function kvBytesPerToken(args: ModelArgs): number {
  const perLayer = args.deepseek ? latentCacheValuesPerToken(args.deepseek) : 2 * args.numKeyValueHeads * args.headDim;
  return perLayer * 2 * args.numHiddenLayers;
}
