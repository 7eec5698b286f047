// A model's tokenizer: tokenizer.json through @huggingface/tokenizers, the chat template from
// tokenizer_config.json (or chat_template.jinja), and the EOS ids gathered from every config file.
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { NodeError } from "../errors.ts";
import { hasConfigFile, readConfigFile } from "../models/spec/config-file.ts";
import {
  compileChatTemplate,
  pickChatTemplate,
  type ChatTemplateOptions,
  type RenderChat,
  type TemplateMessage,
} from "./chat-template.ts";
import { createKimiTokenizer } from "./tiktoken.ts";

export interface Tokenizer {
  /** Text → ids. `addSpecialTokens` (default true, as in HF) lets the post-processor add BOS. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** Ids → text. `skipSpecial` (default false, as in HF) drops special tokens such as EOS. */
  decode(ids: readonly number[], options?: { skipSpecial?: boolean }): string;
  /** Renders a conversation with the model's chat template. @throws NodeError E_TOKENIZER */
  applyChatTemplate(messages: readonly TemplateMessage[], options?: ChatTemplateOptions): string;
  /** Renders and encodes without adding special tokens again, so BOS appears once. @throws NodeError E_TOKENIZER */
  encodeChat(messages: readonly TemplateMessage[], options?: ChatTemplateOptions): number[];
  /** Every id that ends generation (config.json, generation_config.json, tokenizer_config.json). */
  readonly eosIds: ReadonlySet<number>;
  /** Ids of added tokens marked special; they never reach streamed text. */
  readonly specialIds: ReadonlySet<number>;
  readonly bosId: number | undefined;
}

/** The parsed contents of a model's tokenizer files; only tokenizerJson is required. */
export interface TokenizerFiles {
  tokenizerJson: unknown;
  tokenizerConfig?: unknown;
  config?: unknown;
  generationConfig?: unknown;
  /** Contents of chat_template.jinja, which newer checkpoints use instead of the config key. */
  chatTemplate?: string;
}

/**
 * Reads the tokenizer files of a model directory.
 * @throws NodeError E_TOKENIZER naming the file that is missing or broken.
 */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  const ranks = Bun.file(join(modelDir, "tiktoken.model"));
  if (!(await Bun.file(join(modelDir, "tokenizer.json")).exists()) && (await ranks.exists()))
    return loadTiktokenTokenizer(modelDir, await ranks.text());
  const tokenizerJson = await readJson(join(modelDir, "tokenizer.json"), true);
  const files: TokenizerFiles = {
    tokenizerJson,
    tokenizerConfig: await readJson(join(modelDir, "tokenizer_config.json"), false),
    // config.json is read by the model-knowledge module (the only reader of that file).
    config: (await hasConfigFile(modelDir)) ? await readConfigFile(modelDir) : undefined,
    generationConfig: await readJson(join(modelDir, "generation_config.json"), false),
  };
  const jinja = Bun.file(join(modelDir, "chat_template.jinja"));
  if (await jinja.exists()) files.chatTemplate = await jinja.text();
  return createTokenizer(files, modelDir);
}

/**
 * Builds a tokenizer from already-parsed files (used for embedded models). `source` names them in errors.
 * @throws NodeError E_TOKENIZER when tokenizer.json or the chat template is unusable.
 */
export function createTokenizer(files: TokenizerFiles, source: string): Tokenizer {
  const config = asRecord(files.tokenizerConfig);
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(files.tokenizerJson as object, config);
  } catch (cause) {
    throw new NodeError("E_TOKENIZER", `${join(source, "tokenizer.json")}: not a usable tokenizer: ${String(cause)}`, {
      cause,
    });
  }
  const specialTokens = specialTokenStrings(config);
  const idOf = (token: string | undefined): number | undefined =>
    token === undefined ? undefined : hf.token_to_id(token);
  const specialIds = new Set<number>();
  for (const [id, added] of hf.get_added_tokens_decoder()) if (added.special) specialIds.add(id);
  const eosIds = new Set<number>([
    ...idList(asRecord(files.config).eos_token_id),
    ...idList(asRecord(files.generationConfig).eos_token_id),
  ]);
  const eosFromTokenizer = idOf(specialTokens.eos_token);
  if (eosFromTokenizer !== undefined) eosIds.add(eosFromTokenizer);
  for (const id of eosIds) specialIds.add(id);

  const templateSource = files.chatTemplate ?? pickChatTemplate(config.chat_template);
  const render: RenderChat | undefined =
    templateSource === undefined
      ? undefined
      : compileChatTemplate(templateSource, specialTokens, join(source, "tokenizer_config.json"));

  const encode = (text: string, options: { addSpecialTokens?: boolean } = {}): number[] =>
    hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  const applyChatTemplate = (messages: readonly TemplateMessage[], options?: ChatTemplateOptions): string => {
    if (!render)
      throw new NodeError("E_TOKENIZER", `${source} has no chat template (tokenizer_config.json chat_template)`);
    return render(messages, options);
  };
  return {
    encode,
    decode: (ids, options = {}) =>
      ids.length === 0 ? "" : hf.decode(ids as number[], { skip_special_tokens: options.skipSpecial ?? false }),
    applyChatTemplate,
    // The rendered text already holds BOS when the template writes it; HF also encodes it without special tokens.
    encodeChat: (messages, options) => encode(applyChatTemplate(messages, options), { addSpecialTokens: false }),
    eosIds,
    specialIds,
    bosId: idOf(specialTokens.bos_token),
  };
}

// --- internal ---

/** A tiktoken rank file without tokenizer.json: Kimi K2's layout; its split pattern is known, no other's. */
async function loadTiktokenTokenizer(modelDir: string, ranks: string): Promise<Tokenizer> {
  const config = (await hasConfigFile(modelDir)) ? await readConfigFile(modelDir) : undefined;
  if (config?.model_type !== "kimi_k2")
    throw new NodeError(
      "E_TOKENIZER",
      `${modelDir} has a tiktoken.model but no tokenizer.json; this build knows the split pattern of Kimi K2's ` +
        `tiktoken tokenizer only (model_type "${String(config?.model_type)}")`,
    );
  const generationConfig = asRecord(await readJson(join(modelDir, "generation_config.json"), false));
  const jinja = Bun.file(join(modelDir, "chat_template.jinja"));
  return createKimiTokenizer(
    {
      ranks,
      tokenizerConfig: asRecord(await readJson(join(modelDir, "tokenizer_config.json"), false)),
      eosIds: [...idList(config.eos_token_id), ...idList(generationConfig.eos_token_id)],
      ...((await jinja.exists()) ? { chatTemplate: await jinja.text() } : {}),
    },
    modelDir,
  );
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  const file = Bun.file(path);
  if (!(await file.exists())) {
    if (required) throw new NodeError("E_TOKENIZER", `${path} is missing`);
    return undefined;
  }
  const text = await file.text();
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new NodeError("E_TOKENIZER", `${path} is not valid JSON: ${String(cause)}`, { cause });
  }
}

function asRecord(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function idList(value: unknown): number[] {
  const list = Array.isArray(value) ? value : [value];
  return list.filter((v): v is number => Number.isInteger(v));
}

/** bos_token, eos_token, ... as strings; configs write them as strings or as AddedToken objects. */
function specialTokenStrings(config: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"]) {
    const value = config[key];
    const content = typeof value === "string" ? value : asRecord(value).content;
    if (typeof content === "string") out[key] = content;
  }
  return out;
}
