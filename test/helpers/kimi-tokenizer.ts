// A small Kimi-K2-style tokenizer directory content: tiktoken.model (every byte, then a few merges by rank),
// tokenizer_config.json with added special tokens and a chat template in Kimi's <|im_…|> style. No
// tokenizer.json, as Kimi ships it. Ids: bytes 0-255, merges from 256, special tokens from 256 + merges.
const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

export const KIMI_MERGES = ["he", "ll", "llo", "hello", " w", "or", "ld", " wor", " world"];
export const KIMI_SPECIAL_NAMES = ["[BOS]", "[EOS]", "<|im_end|>", "<|im_user|>", "<|im_assistant|>"];
/** Id of a special token by name. */
export const kimiSpecialId = (name: string) => 256 + KIMI_MERGES.length + KIMI_SPECIAL_NAMES.indexOf(name);
/** Every id the tokenizer knows, plus one: the smallest vocab_size a model for it can have. */
export const KIMI_VOCAB = 256 + KIMI_MERGES.length + KIMI_SPECIAL_NAMES.length;

/** File name → content of the tokenizer files. */
export function kimiTokenizerFiles(): Record<string, string> {
  const lines = Array.from({ length: 256 }, (_, i) => `${b64(Uint8Array.of(i))} ${i}`);
  KIMI_MERGES.forEach((m, i) => lines.push(`${b64(m)} ${256 + i}`));
  const decoder = Object.fromEntries(
    KIMI_SPECIAL_NAMES.map((content) => [String(kimiSpecialId(content)), { content, special: true }]),
  );
  return {
    "tiktoken.model": `${lines.join("\n")}\n`,
    "tokenizer_config.json": JSON.stringify({
      bos_token: "[BOS]",
      eos_token: "[EOS]",
      added_tokens_decoder: decoder,
      chat_template:
        "{% for m in messages %}<|im_{{ m.role }}|>{{ m.content }}<|im_end|>{% endfor %}{% if add_generation_prompt %}<|im_assistant|>{% endif %}",
    }),
  };
}
