// Kimi K2's tiktoken tokenizer (tiktoken.model, no tokenizer.json) through loadTokenizer, on a small rank
// file made here: the split pattern of tokenization_kimi.py, BPE merges by rank, special tokens, EOS ids,
// the chat template, and a clear refusal for tiktoken files of other models.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isNodeError } from "../../../src/errors.ts";
import { KIMI_SPLIT_PATTERN } from "../../../src/tokenizer/tiktoken.ts";
import { loadTokenizer } from "../../../src/tokenizer/tokenizer.ts";
import { KIMI_MERGES, kimiSpecialId, kimiTokenizerFiles } from "../../helpers/kimi-tokenizer.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function kimiDir(modelType = "kimi_k2"): string {
  const dir = mkdtempSync(join(tmpdir(), "exo-tiktoken-"));
  dirs.push(dir);
  for (const [name, body] of Object.entries(kimiTokenizerFiles())) writeFileSync(join(dir, name), body);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ model_type: modelType, eos_token_id: kimiSpecialId("<|im_end|>") }),
  );
  return dir;
}

const [BOS, EOS, IM_END, IM_USER, IM_ASSISTANT] = [
  "[BOS]",
  "[EOS]",
  "<|im_end|>",
  "<|im_user|>",
  "<|im_assistant|>",
].map(kimiSpecialId) as [number, number, number, number, number];
const HELLO = 256 + KIMI_MERGES.indexOf("hello");
const WORLD = 256 + KIMI_MERGES.indexOf(" world");

describe("Kimi K2 tiktoken tokenizer", () => {
  test("the split pattern cuts like tokenization_kimi.py: Han runs, contractions, digits in threes", () => {
    const pieces = [..."Hello's 世界123456 x\n\n".matchAll(new RegExp(KIMI_SPLIT_PATTERN, "gu"))].map((m) => m[0]);
    expect(pieces).toEqual(["Hello's", " ", "世界", "123", "456", " x", "\n\n"]);
  });

  test("encodes by merge rank, falls back to bytes, and round-trips any text", async () => {
    const tok = await loadTokenizer(kimiDir());
    expect(tok.encode("hello world")).toEqual([HELLO, WORLD]);
    const text = "héllo 你好, it's 2026!";
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.encode("你")).toEqual([...Buffer.from("你")]);
  });

  test("special tokens in the text become their ids, count as EOS where configured, and are skippable", async () => {
    const tok = await loadTokenizer(kimiDir());
    expect(tok.encode("[BOS]hello<|im_end|>")).toEqual([BOS, HELLO, IM_END]);
    expect([...tok.eosIds].sort()).toEqual([EOS, IM_END].sort());
    expect(tok.bosId).toBe(BOS);
    expect(tok.decode([HELLO, IM_END], { skipSpecial: true })).toBe("hello");
    expect(tok.decode([HELLO, IM_END])).toBe("hello<|im_end|>");
  });

  test("the chat template renders and encodes with special tokens as single ids", async () => {
    const tok = await loadTokenizer(kimiDir());
    const ids = tok.encodeChat([{ role: "user", content: "hello" }]);
    expect(ids).toEqual([IM_USER, HELLO, IM_END, IM_ASSISTANT]);
  });

  test("a tiktoken.model of another model is refused, naming why", async () => {
    const err = await loadTokenizer(kimiDir("qwen")).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_TOKENIZER");
    expect(String((err as Error).message)).toContain("split pattern of Kimi K2's tiktoken tokenizer only");
  });
});
