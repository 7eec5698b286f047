// "Did you mean": closest catalog ids by case-insensitive edit distance.
import { describe, expect, test } from "bun:test";
import { closestIds, editDistance } from "../../../src/catalog/suggest.ts";

const IDS = ["llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b", "qwen-2.5-7b", "exo-tiny-chat"];

describe("closestIds", () => {
  test("a typo or a different case finds the intended id first", () => {
    expect(closestIds("lama-3.2-1b", IDS)[0]).toBe("llama-3.2-1b");
    expect(closestIds("LLAMA-3.2-1B", IDS)[0]).toBe("llama-3.2-1b");
    expect(closestIds("qwen2.5-7b", IDS)).toEqual(["qwen-2.5-7b"]);
  });

  test("at most `max` ids, closest first; nothing near gives nothing", () => {
    expect(closestIds("llama-3.2-2b", IDS, 2)).toEqual(["llama-3.2-1b", "llama-3.2-3b"]);
    expect(closestIds("gpt-5", IDS)).toEqual([]);
  });

  test("editDistance counts inserts, deletes and substitutions", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });
});
