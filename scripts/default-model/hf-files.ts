// The Hugging Face files of the embedded default model, built as plain objects: a byte-level BPE
// tokenizer with no merges (one token per byte, so any text encodes) plus a few special tokens,
// its tokenizer_config.json with the chat template, config.json and generation_config.json.

export const MODEL_ID = "exo-tiny-chat";

export const SPECIAL_TOKENS = [
  "<|begin|>",
  "<|end|>",
  "<|system|>",
  "<|user|>",
  "<|assistant|>",
  "<|tool|>",
  "<|pad|>",
];
export const BOS_ID = 256;
export const EOS_ID = 257;
export const PAD_ID = 262;
export const VOCAB_SIZE = 256 + SPECIAL_TOKENS.length;

/** Plain Llama shape (no rope_scaling); small enough to train in minutes on two CPU cores. */
export const ARCH = {
  hiddenSize: 128,
  intermediateSize: 384,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  ropeTheta: 10000,
  rmsNormEps: 1e-5,
} as const;

/**
 * A conversation is BOS, then `<|role|>content<|end|>` per message, then `<|assistant|>` to ask for the answer.
 * Offered tools come first as one system line, `tools: name(param,...)`; an assistant's tool calls are written
 * Qwen/Hermes style, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, and tool results are `<|tool|>`
 * messages. Without tools or tool calls it renders exactly as the first template did (phase 1 depends on that).
 */
export const CHAT_TEMPLATE =
  "{{ bos_token }}" +
  "{% if tools %}{{ '<|system|>tools: ' }}{% for t in tools %}" +
  "{% set f = t.function if t.function is defined else t %}" +
  "{{ f.name }}({% if f.parameters is defined and f.parameters.properties is defined %}" +
  "{{ f.parameters.properties.keys() | join(',') }}{% endif %}){% if not loop.last %}{{ ' ' }}{% endif %}" +
  "{% endfor %}{{ '<|end|>' }}{% endif %}" +
  "{% for message in messages %}" +
  "{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}" +
  "{{ raise_exception('exo-tiny-chat knows the roles system, user, assistant and tool, not ' + message['role']) }}" +
  "{% endif %}" +
  "{% if message['role'] == 'assistant' and message['tool_calls'] %}" +
  "{{ '<|assistant|>' }}{% if message['content'] is string %}{{ message['content'] }}{% endif %}" +
  "{% for call in message['tool_calls'] %}{% set f = call.function if call.function is defined else call %}" +
  "{{ '<tool_call>' }}{% if f.arguments is string %}" +
  "{{ '{\"name\": ' + (f.name | tojson) + ', \"arguments\": ' + f.arguments + '}' }}" +
  "{% else %}{{ {'name': f.name, 'arguments': f.arguments} | tojson }}{% endif %}{{ '</tool_call>' }}" +
  "{% endfor %}{{ '<|end|>' }}" +
  "{% else %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/** The template before tools (kept to prove the new one renders plain chats identically). */
export const PLAIN_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}" +
  "{{ raise_exception('exo-tiny-chat knows the roles system, user, assistant and tool, not ' + message['role']) }}" +
  "{% endif %}" +
  "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

/** GPT-2's byte ↔ printable-character table, which ByteLevel pre-tokenizers and decoders use. */
export function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars.push(String.fromCharCode(printable(b) ? b : next++));
  return chars;
}

const addedToken = (content: string, id: number) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

export function tokenizerJson(): object {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((ch, id) => (vocab[ch] = id));
  const bos = SPECIAL_TOKENS[0]!;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t, i) => addedToken(t, 256 + i)),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: bos, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: bos, type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [bos]: { id: bos, ids: [BOS_ID], tokens: [bos] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

export function tokenizerConfigJson(): object {
  const decoder: Record<string, object> = {};
  SPECIAL_TOKENS.forEach((t, i) => {
    const { id: _id, ...rest } = addedToken(t, 256 + i);
    decoder[String(256 + i)] = rest;
  });
  return {
    added_tokens_decoder: decoder,
    bos_token: SPECIAL_TOKENS[0],
    eos_token: SPECIAL_TOKENS[1],
    pad_token: SPECIAL_TOKENS[6],
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_input_names: ["input_ids", "attention_mask"],
    model_max_length: 512,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
}

export function configJson(): object {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: ARCH.hiddenSize,
    intermediate_size: ARCH.intermediateSize,
    num_hidden_layers: ARCH.numLayers,
    num_attention_heads: ARCH.numHeads,
    num_key_value_heads: ARCH.numKvHeads,
    head_dim: ARCH.headDim,
    hidden_act: "silu",
    max_position_embeddings: 512,
    rms_norm_eps: ARCH.rmsNormEps,
    rope_theta: ARCH.ropeTheta,
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: false,
    vocab_size: VOCAB_SIZE,
    bos_token_id: BOS_ID,
    eos_token_id: EOS_ID,
    pad_token_id: PAD_ID,
    initializer_range: 0.02,
    torch_dtype: "float32",
  };
}

export function generationConfigJson(): object {
  return { bos_token_id: BOS_ID, eos_token_id: EOS_ID, pad_token_id: PAD_ID, do_sample: false };
}
