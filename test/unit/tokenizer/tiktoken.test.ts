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

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");
/** Every byte, then merges in rank order (each rank is its line). */
const MERGES = ["he", "ll", "llo", "hello", " w", "or", "ld", " wor", " world"];
const SPECIAL = { 300: "[BOS]", 301: "[EOS]", 302: "<|im_end|>", 303: "<|im_user|>", 304: "<|im_assistant|>" };

function kimiDir(modelType = "kimi_k2"): string {
  const dir = mkdtempSync(join(tmpdir(), "exo-tiktoken-"));
  dirs.push(dir);
  const lines = Array.from({ length: 256 }, (_, i) => `${b64(Uint8Array.of(i))} ${i}`);
  MERGES.forEach((m, i) => lines.push(`${b64(m)} ${256 + i}`));
  writeFileSync(join(dir, "tiktoken.model"), `${lines.join("\n")}\n`);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: modelType, eos_token_id: 302 }));
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({
      bos_token: "[BOS]",
      eos_token: "[EOS]",
      added_tokens_decoder: Object.fromEntries(
        Object.entries(SPECIAL).map(([id, content]) => [id, { content, special: true }]),
      ),
      chat_template:
        "{% for m in messages %}<|im_{{ m.role }}|>{{ m.content }}<|im_end|>{% endfor %}{% if add_generation_prompt %}<|im_assistant|>{% endif %}",
    }),
  );
  return dir;
}

describe("Kimi K2 tiktoken tokenizer", () => {
  test("the split pattern cuts like tokenization_kimi.py: Han runs, contractions, digits in threes", () => {
    const pieces = [..."Hello's 世界123456 x\n\n".matchAll(new RegExp(KIMI_SPLIT_PATTERN, "gu"))].map((m) => m[0]);
    expect(pieces).toEqual(["Hello's", " ", "世界", "123", "456", " x", "\n\n"]);
  });

  test("encodes by merge rank, falls back to bytes, and round-trips any text", async () => {
    const tok = await loadTokenizer(kimiDir());
    expect(tok.encode("hello world")).toEqual([256 + 3, 256 + 8]);
    const text = "héllo 你好, it's 2026!";
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.encode("你")).toEqual([...Buffer.from("你")]);
  });

  test("special tokens in the text become their ids, count as EOS where configured, and are skippable", async () => {
    const tok = await loadTokenizer(kimiDir());
    expect(tok.encode("[BOS]hello<|im_end|>")).toEqual([300, 259, 302]);
    expect([...tok.eosIds].sort()).toEqual([301, 302]);
    expect(tok.bosId).toBe(300);
    expect(tok.decode([259, 302], { skipSpecial: true })).toBe("hello");
    expect(tok.decode([259, 302])).toBe("hello<|im_end|>");
  });

  test("the chat template renders and encodes with special tokens as single ids", async () => {
    const tok = await loadTokenizer(kimiDir());
    const ids = tok.encodeChat([{ role: "user", content: "hello" }]);
    expect(ids).toEqual([303, 259, 302, 304]);
  });

  test("a tiktoken.model of another model is refused, naming why", async () => {
    const err = await loadTokenizer(kimiDir("qwen")).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_TOKENIZER");
    expect(String((err as Error).message)).toContain("split pattern of Kimi K2's tiktoken tokenizer only");
  });
});
