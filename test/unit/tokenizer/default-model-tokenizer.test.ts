// The embedded default model's tokenizer files (configs/default-model): they load through the same path
// as any Hugging Face model, round-trip any text, and render chats with one BOS and a single EOS id.
import { beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { isNodeError } from "../../../src/errors.ts";
import { createDetokenizer } from "../../../src/tokenizer/detokenizer.ts";
import { loadTokenizer, type Tokenizer } from "../../../src/tokenizer/tokenizer.ts";

const MODEL_DIR = join(import.meta.dir, "../../../configs/default-model");
let tok: Tokenizer;
beforeAll(async () => {
  tok = await loadTokenizer(MODEL_DIR);
});

describe("exo-tiny-chat tokenizer", () => {
  test("round-trips ASCII, accents, emoji and CJK byte by byte", () => {
    const text = "count from 3 to 9 · Héllo 🦙 你好\n\ttabs";
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids).toHaveLength(new TextEncoder().encode(text).length);
    expect(tok.decode(ids)).toBe(text);
  });

  test("adds BOS when asked, as the post-processor says", () => {
    expect(tok.encode("hi")).toEqual([tok.bosId!, ..."hi".split("").map((c) => c.charCodeAt(0))]);
  });

  test("renders the chat template with one BOS and ends with the assistant tag", () => {
    const chat = [
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "reverse abc" },
    ];
    expect(tok.applyChatTemplate(chat)).toBe(
      "<|begin|><|system|>Answer briefly.<|end|><|user|>reverse abc<|end|><|assistant|>",
    );
    const ids = tok.encodeChat(chat);
    expect(ids.filter((id) => id === tok.bosId)).toHaveLength(1);
    expect(ids[0]).toBe(tok.bosId!);
    expect(tok.decode(ids)).toBe(tok.applyChatTemplate(chat));
  });

  test("has <|end|> as its only EOS and keeps it out of streamed text", () => {
    expect([...tok.eosIds]).toEqual(tok.encode("<|end|>", { addSpecialTokens: false }));
    const d = createDetokenizer(tok);
    const ids = [...tok.encode("edcba", { addSpecialTokens: false }), ...tok.eosIds];
    expect(ids.map((id) => d.push(id)).join("") + d.flush()).toBe("edcba");
  });

  test("refuses a role it was not trained on with E_INVALID_REQUEST (the client's 400)", () => {
    let caught: unknown;
    try {
      tok.applyChatTemplate([{ role: "robot", content: "beep" }]);
    } catch (err) {
      caught = err;
    }
    expect(isNodeError(caught) && caught.code).toBe("E_INVALID_REQUEST");
    expect(String((caught as Error).message)).toContain("robot");
  });
});
