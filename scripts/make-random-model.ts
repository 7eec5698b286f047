// Writes an HF-format Llama checkpoint with deterministic random weights (+ tokenizer files) to a directory,
// for benchmarks and tests that need a model of a given size. Example:
//   nice -n 10 bun scripts/make-random-model.ts --preset 1b --out /tmp/llama-1b --tokenizer-from DIR
// Tokenizer files come from --tokenizer-from (default configs/default-model); the vocabulary follows them
// unless --vocab is given.
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { writeRandomCheckpoint } from "../src/engine/random-checkpoint.ts";

/** Sizes: tiny for tests, 100m and 1b (the Llama 3.2 1B geometry, 1.24B params) for benchmarks. */
const PRESETS: Record<string, Record<string, number | boolean>> = {
  tiny: { hidden: 64, layers: 4, heads: 4, "kv-heads": 2, intermediate: 128, vocab: 128, tie: false },
  "100m": { hidden: 512, layers: 8, heads: 8, "kv-heads": 4, intermediate: 1536, vocab: 128256, tie: true },
  "1b": { hidden: 2048, layers: 16, heads: 32, "kv-heads": 8, intermediate: 8192, vocab: 128256, tie: true },
};
const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "generation_config.json",
];

const { values: opt } = parseArgs({
  options: {
    out: { type: "string" },
    preset: { type: "string" },
    hidden: { type: "string" },
    layers: { type: "string" },
    heads: { type: "string" },
    "kv-heads": { type: "string" },
    intermediate: { type: "string" },
    vocab: { type: "string" },
    tie: { type: "boolean" },
    seed: { type: "string", default: "0" },
    dtype: { type: "string", default: "float32" },
    bits: { type: "string" },
    "group-size": { type: "string", default: "64" },
    "tokenizer-from": { type: "string" },
  },
});

if (!opt.out) {
  console.error(
    "usage: bun scripts/make-random-model.ts --out DIR [--preset tiny|100m|1b] [--hidden N --layers N --heads N",
  );
  console.error(
    "         --kv-heads N --intermediate N --vocab N --tie] [--seed N] [--dtype float32|bfloat16|float16]",
  );
  console.error("         [--bits 3|4|6|8 --group-size 64] [--tokenizer-from DIR]");
  process.exit(2);
}
const preset = PRESETS[opt.preset ?? "tiny"];
if (!preset) {
  console.error(`unknown preset "${opt.preset}" (known: ${Object.keys(PRESETS).join(", ")})`);
  process.exit(2);
}
const size = (key: string) => Number((opt as Record<string, unknown>)[key] ?? preset[key]);
const tokenizerDir =
  opt["tokenizer-from"] ?? (existsSync("configs/default-model/tokenizer.json") ? "configs/default-model" : undefined);
/** Ids a tokenizer.json can produce or decode: the model's vocabulary must cover them and should not exceed them. */
function tokenizerVocabSize(dir: string | undefined): number | undefined {
  if (!dir || !existsSync(join(dir, "tokenizer.json"))) return undefined;
  const t = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as {
    model?: { vocab?: Record<string, number> };
    added_tokens?: { id: number }[];
  };
  const ids = [...Object.values(t.model?.vocab ?? {}), ...(t.added_tokens ?? []).map((a) => a.id)];
  return ids.length ? Math.max(...ids) + 1 : undefined;
}
/** bos/eos ids: from the tokenizer's own config.json when it has one, else Llama 3's when the vocabulary fits. */
function specialIds(dir: string | undefined, vocab: number): Record<string, unknown> {
  const cfgPath = dir ? join(dir, "config.json") : "";
  if (cfgPath && existsSync(cfgPath)) {
    const c = JSON.parse(readFileSync(cfgPath, "utf8")) as Record<string, unknown>;
    return Object.fromEntries(
      ["bos_token_id", "eos_token_id", "pad_token_id"].filter((k) => k in c).map((k) => [k, c[k]]),
    );
  }
  return vocab >= 128256 ? { bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] } : {};
}
// Without an explicit --vocab, the model's vocabulary follows the tokenizer it ships with.
const vocabSize = opt.vocab ? Number(opt.vocab) : (tokenizerVocabSize(tokenizerDir) ?? size("vocab"));
const tie = opt.tie ?? Boolean(preset.tie);
const dtype = opt.dtype as "float32" | "bfloat16" | "float16";
const config = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: size("hidden"),
  num_hidden_layers: size("layers"),
  num_attention_heads: size("heads"),
  num_key_value_heads: size("kv-heads"),
  intermediate_size: size("intermediate"),
  vocab_size: vocabSize,
  head_dim: size("hidden") / size("heads"),
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    rope_type: "llama3",
    factor: 32,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  },
  max_position_embeddings: 131072,
  tie_word_embeddings: tie,
  ...specialIds(tokenizerDir, vocabSize),
  torch_dtype: dtype,
  hidden_act: "silu",
};

const started = performance.now();
const result = await writeRandomCheckpoint(opt.out, {
  config,
  seed: Number(opt.seed),
  dtype,
  quantize: opt.bits ? { bits: Number(opt.bits), groupSize: Number(opt["group-size"]) } : undefined,
});
const copied: string[] = [];
for (const f of TOKENIZER_FILES) {
  if (tokenizerDir && existsSync(join(tokenizerDir, f))) {
    copyFileSync(join(tokenizerDir, f), join(opt.out, f));
    copied.push(f);
  }
}
const params =
  config.num_hidden_layers *
    (2 * config.hidden_size +
      config.hidden_size * config.head_dim * (2 * config.num_attention_heads + 2 * config.num_key_value_heads) +
      3 * config.hidden_size * config.intermediate_size) +
  config.vocab_size * config.hidden_size * (tie ? 1 : 2) +
  config.hidden_size;
console.log(
  JSON.stringify({
    out: opt.out,
    params,
    files: result.files,
    tensors: result.tensorNames.length,
    tokenizer: copied,
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  }),
);
