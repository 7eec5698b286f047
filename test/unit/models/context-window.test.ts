// A model's context window from config.json and tokenizer_config.json (the smaller real limit wins).
import { describe, expect, test } from "bun:test";
import { contextWindow } from "../../../src/models/spec/context-window.ts";

describe("contextWindow", () => {
  test("is config.json's max_position_embeddings (or its text_config's)", () => {
    expect(contextWindow({ max_position_embeddings: 512 })).toBe(512);
    expect(contextWindow({ text_config: { max_position_embeddings: 8192 } })).toBe(8192);
  });

  test("a smaller model_max_length in tokenizer_config.json lowers it; a larger one does not raise it", () => {
    expect(contextWindow({ max_position_embeddings: 131072 }, { model_max_length: 8192 })).toBe(8192);
    expect(contextWindow({ max_position_embeddings: 512 }, { model_max_length: 4096 })).toBe(512);
  });

  test("transformers' 'no limit' sentinel and junk values are ignored; no limit at all is undefined", () => {
    expect(contextWindow({ max_position_embeddings: 2048 }, { model_max_length: 1e30 })).toBe(2048);
    expect(contextWindow({ max_position_embeddings: "2048" }, { model_max_length: -1 })).toBeUndefined();
    expect(contextWindow({})).toBeUndefined();
  });
});
