// Fixture repos for the fake hub: tiny Llama checkpoints in Hugging Face format (config, tokenizer files,
// real safetensors with HF tensor names), as one file or sharded across several files with an index.
import type { FixtureFile, FixtureRepo } from "./fake-hub.ts";

export interface TinyLlamaDims {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab: number;
  tied: boolean;
}

/** The HF config.json of a tiny Llama. */
export function tinyLlamaConfig(d: TinyLlamaDims): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: d.hidden,
    intermediate_size: d.intermediate,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    num_hidden_layers: d.layers,
    vocab_size: d.vocab,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 256,
    tie_word_embeddings: d.tied,
    torch_dtype: "float32",
  };
}

/** Tensor names and shapes of layer `i` (or of the non-layer parts when i is "embed"/"head"). */
export function llamaTensors(d: TinyLlamaDims, part: number | "embed" | "head"): Record<string, number[]> {
  if (part === "embed") return { "model.embed_tokens.weight": [d.vocab, d.hidden] };
  if (part === "head")
    return { "model.norm.weight": [d.hidden], ...(d.tied ? {} : { "lm_head.weight": [d.vocab, d.hidden] }) };
  const p = `model.layers.${part}`;
  return {
    [`${p}.input_layernorm.weight`]: [d.hidden],
    [`${p}.post_attention_layernorm.weight`]: [d.hidden],
    [`${p}.self_attn.q_proj.weight`]: [d.hidden, d.hidden],
    [`${p}.self_attn.k_proj.weight`]: [d.hidden, d.hidden],
    [`${p}.self_attn.v_proj.weight`]: [d.hidden, d.hidden],
    [`${p}.self_attn.o_proj.weight`]: [d.hidden, d.hidden],
    [`${p}.mlp.gate_proj.weight`]: [d.intermediate, d.hidden],
    [`${p}.mlp.up_proj.weight`]: [d.intermediate, d.hidden],
    [`${p}.mlp.down_proj.weight`]: [d.hidden, d.intermediate],
  };
}

/** A safetensors file of float32 tensors filled with small deterministic values. */
export function safetensorsBytes(tensors: Record<string, number[]>, seed = 1): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: "F32", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  const values = new Float32Array(out.buffer, 8 + json.length, offset / 4);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < values.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = (state / 2 ** 32 - 0.5) * 0.1;
  }
  return out;
}

const encoder = new TextEncoder();
const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value, null, 2));

/** config.json, generation config and (minimal) tokenizer files every fixture repo carries. */
export function configFiles(d: TinyLlamaDims): FixtureFile[] {
  return [
    { path: "config.json", bytes: json(tinyLlamaConfig(d)) },
    { path: "generation_config.json", bytes: json({ bos_token_id: 1, eos_token_id: 2 }) },
    { path: "tokenizer.json", bytes: json({ version: "1.0", model: { type: "BPE", vocab: {}, merges: [] } }) },
    {
      path: "tokenizer_config.json",
      bytes: json({ bos_token: "<s>", eos_token: "</s>", chat_template: "{{ messages }}" }),
    },
    { path: "special_tokens_map.json", bytes: json({ bos_token: "<s>", eos_token: "</s>" }) },
    { path: "README.md", bytes: encoder.encode("# tiny fixture\n") },
  ];
}

/** One model.safetensors holding every tensor. */
export function singleFileRepo(id: string, d: TinyLlamaDims): FixtureRepo {
  const tensors: Record<string, number[]> = { ...llamaTensors(d, "embed") };
  for (let i = 0; i < d.layers; i++) Object.assign(tensors, llamaTensors(d, i));
  Object.assign(tensors, llamaTensors(d, "head"));
  return { id, files: [...configFiles(d), { path: "model.safetensors", bytes: safetensorsBytes(tensors) }] };
}

/**
 * Weights split into files by half-open layer ranges: the first file also holds the embedding,
 * the last the final norm and lm_head, plus model.safetensors.index.json mapping tensor → file.
 */
export function shardedRepo(id: string, d: TinyLlamaDims, fileLayers: Array<[number, number]>): FixtureRepo {
  const n = fileLayers.length;
  const weightMap: Record<string, string> = {};
  const files: FixtureFile[] = fileLayers.map(([start, end], k) => {
    const name = `model-${String(k + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
    const tensors: Record<string, number[]> = k === 0 ? { ...llamaTensors(d, "embed") } : {};
    for (let i = start; i < end; i++) Object.assign(tensors, llamaTensors(d, i));
    if (k === n - 1) Object.assign(tensors, llamaTensors(d, "head"));
    for (const t of Object.keys(tensors)) weightMap[t] = name;
    return { path: name, bytes: safetensorsBytes(tensors, k + 1) };
  });
  const index = {
    metadata: { total_size: files.reduce((s, f) => s + (f.bytes?.length ?? 0), 0) },
    weight_map: weightMap,
  };
  return { id, files: [...configFiles(d), { path: "model.safetensors.index.json", bytes: json(index) }, ...files] };
}

/** Dimensions of the standard fixtures: small, but big enough that a file arrives in many chunks. */
export const SINGLE_DIMS: TinyLlamaDims = { layers: 4, hidden: 128, intermediate: 256, vocab: 1024, tied: false };
export const SHARDED_DIMS: TinyLlamaDims = { layers: 6, hidden: 64, intermediate: 128, vocab: 256, tied: false };
/** Layers per file of the sharded fixture: file 1 = embed + [0,1), 2 = [1,3), 3 = [3,5), 4 = [5,6) + head. */
export const SHARDED_FILES: Array<[number, number]> = [
  [0, 1],
  [1, 3],
  [3, 5],
  [5, 6],
];
