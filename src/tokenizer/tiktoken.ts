// Kimi K2's tokenizer: a tiktoken rank file (tiktoken.model: one "base64-token rank" per line) split by the
// pattern of Moonshot's tokenization_kimi.py, with special tokens from tokenizer_config.json's
// added_tokens_decoder; BPE through js-tiktoken. The pattern lives in Python code, not in the files, so only
// Kimi's is known: other tiktoken-only models are refused by the caller.
import { Tiktoken } from "js-tiktoken/lite";
import { join } from "node:path";
import { NodeError } from "../errors.ts";
import { compileChatTemplate, pickChatTemplate, type RenderChat } from "./chat-template.ts";
import type { Tokenizer } from "./tokenizer.ts";

const HAN = "\\p{Script=Han}";
/** Python's `[X&&[^\p{Han}]]` (class intersection) as a lookahead, which JS's u-mode regexps accept. */
const notHan = (cls: string) => `(?:(?!${HAN})[${cls}])`;
const UPPERISH = notHan("\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}");
const LOWERISH = notHan("\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}");
/** Python's `(?i:'s|'t|'re|'ve|'m|'ll|'d)` spelled out (inline flags are not portable). */
const CONTRACTION = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/** The pre-tokenizer split of tokenization_kimi.py, for a JavaScript RegExp with the u flag. */
export const KIMI_SPLIT_PATTERN = [
  `[${HAN}]+`,
  `[^\\r\\n\\p{L}\\p{N}]?${UPPERISH}*${LOWERISH}+${CONTRACTION}?`,
  `[^\\r\\n\\p{L}\\p{N}]?${UPPERISH}+${LOWERISH}*${CONTRACTION}?`,
  "\\p{N}{1,3}",
  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*",
  "\\s*[\\r\\n]+",
  "\\s+(?!\\S)",
  "\\s+",
].join("|");

export interface TiktokenFiles {
  /** Contents of tiktoken.model. */
  ranks: string;
  tokenizerConfig: Record<string, unknown>;
  /** eos_token_id of config.json and generation_config.json. */
  eosIds: number[];
  chatTemplate?: string;
}

/** @throws NodeError E_TOKENIZER when the rank file or the special tokens are malformed. */
export function createKimiTokenizer(files: TiktokenFiles, source: string): Tokenizer {
  // js-tiktoken reads "<ignored> <first rank> <token>..." lines; one token per line keeps ranks as given.
  const lines: string[] = [];
  for (const [i, line] of files.ranks.split("\n").entries()) {
    if (line.trim() === "") continue;
    const [token, rank] = line.trim().split(/\s+/);
    if (!token || !rank || !/^\d+$/.test(rank))
      throw new NodeError("E_TOKENIZER", `${join(source, "tiktoken.model")}:${i + 1}: expected "base64-token rank"`);
    lines.push(`! ${rank} ${token}`);
  }
  const special: Record<string, number> = {};
  const specialIds = new Set<number>();
  const decoder = files.tokenizerConfig.added_tokens_decoder;
  for (const [id, entry] of Object.entries(decoder && typeof decoder === "object" ? decoder : {})) {
    const content = (entry as { content?: unknown }).content;
    if (typeof content !== "string" || !/^\d+$/.test(id))
      throw new NodeError("E_TOKENIZER", `${join(source, "tokenizer_config.json")}: added token ${id} is malformed`);
    special[content] = Number(id);
    if ((entry as { special?: unknown }).special !== false) specialIds.add(Number(id));
  }
  const bpe = new Tiktoken({ pat_str: KIMI_SPLIT_PATTERN, special_tokens: special, bpe_ranks: lines.join("\n") });
  const tokenStrings: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const v = files.tokenizerConfig[key];
    const content = typeof v === "string" ? v : (v as { content?: unknown } | undefined)?.content;
    if (typeof content === "string") tokenStrings[key] = content;
  }
  const eosIds = new Set(files.eosIds);
  if (tokenStrings.eos_token !== undefined && special[tokenStrings.eos_token] !== undefined)
    eosIds.add(special[tokenStrings.eos_token]!);
  for (const id of eosIds) specialIds.add(id);
  const templateSource = files.chatTemplate ?? pickChatTemplate(files.tokenizerConfig.chat_template);
  const render: RenderChat | undefined =
    templateSource === undefined
      ? undefined
      : compileChatTemplate(templateSource, tokenStrings, join(source, "tokenizer_config.json"));
  // Special tokens written in the text become their ids, as Hugging Face does for added tokens. Kimi's
  // tokenizer adds no BOS of its own, so addSpecialTokens changes nothing.
  const encode = (text: string) => bpe.encode(text, "all");
  const applyChatTemplate: Tokenizer["applyChatTemplate"] = (messages, options) => {
    if (!render)
      throw new NodeError("E_TOKENIZER", `${source} has no chat template (tokenizer_config.json chat_template)`);
    return render(messages, options);
  };
  return {
    encode,
    decode: (ids, options = {}) => bpe.decode(options.skipSpecial ? ids.filter((id) => !specialIds.has(id)) : [...ids]),
    applyChatTemplate,
    encodeChat: (messages, options) => encode(applyChatTemplate(messages, options)),
    eosIds,
    specialIds,
    bosId: tokenStrings.bos_token === undefined ? undefined : special[tokenStrings.bos_token],
  };
}
