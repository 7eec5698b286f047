// The random model of the batching benches (batched-decode.ts, batch-attention.ts): decode is memory bound, so a
// wide f32 Llama with a large vocabulary shows what sharing the weight reads is worth.
export const WIDE_LLAMA = {
  model_type: "llama",
  hidden_size: 1024,
  num_hidden_layers: 8,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  intermediate_size: 2816,
  vocab_size: 32000,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  tie_word_embeddings: false,
};

/** How the benches' tables name it. */
export const WIDE_LLAMA_NAME = "random f32 Llama 8x1024, vocab 32000";
