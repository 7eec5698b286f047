// A model's context window from its Hugging Face files: config.json's max_position_embeddings (or its
// text_config's), lowered by tokenizer_config.json's model_max_length when the model card sets a smaller one.
// Pure: parsed JSON in, a token count (or undefined when neither file says) out.

/** transformers writes 1e30 for "no limit"; anything this large is not a real window. */
const NO_LIMIT = 1e12;

/** The longest sequence (prompt + answer) the model takes, in tokens; undefined when the files do not say. */
export function contextWindow(
  config: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown> = {},
): number | undefined {
  const text = config.text_config as Record<string, unknown> | undefined;
  const limits = [config.max_position_embeddings ?? text?.max_position_embeddings, tokenizerConfig.model_max_length];
  const real = limits.filter((n): n is number => typeof n === "number" && Number.isInteger(n) && n > 0 && n < NO_LIMIT);
  return real.length > 0 ? Math.min(...real) : undefined;
}
