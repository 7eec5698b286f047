// Which files a stage needs: pure choice from a repo listing and the index's weight map.
import { describe, expect, test } from "bun:test";
import { filesForStage, isSupportFile, weightFilesForStage } from "../../../src/download/select-files.ts";
import { tensorLayer } from "../../../src/models/spec/ownership.ts";

/** A weight map of `n` layers spread `perFile` layers per file; embed in the first file, norm + head in the last. */
function weightMap(n: number, perFile: number, tied = false): Record<string, string> {
  const files = Math.ceil(n / perFile);
  const name = (k: number) => `model-${k + 1}-of-${files}.safetensors`;
  const map: Record<string, string> = { "model.embed_tokens.weight": name(0), "model.norm.weight": name(files - 1) };
  if (!tied) map["lm_head.weight"] = name(files - 1);
  for (let i = 0; i < n; i++) {
    map[`model.layers.${i}.self_attn.q_proj.weight`] = name(Math.floor(i / perFile));
    map[`model.layers.${i}.mlp.down_proj.scales`] = name(Math.floor(i / perFile));
  }
  return map;
}

describe("tensorLayer", () => {
  test("reads the layer index of a block tensor and nothing for the others", () => {
    expect(tensorLayer("model.layers.12.mlp.gate_proj.weight")).toBe(12);
    expect(tensorLayer("language_model.model.layers.3.self_attn.k_proj.biases")).toBe(3);
    expect(tensorLayer("model.embed_tokens.weight")).toBeUndefined();
    expect(tensorLayer("model.norm.weight")).toBeUndefined();
  });
});

describe("weightFilesForStage", () => {
  test("every stage of a random split gets exactly the files holding its layers, plus embed/head files at the ends", () => {
    for (let trial = 0; trial < 200; trial++) {
      const n = 2 + Math.floor(Math.random() * 60);
      const perFile = 1 + Math.floor(Math.random() * 8);
      const tied = Math.random() < 0.3;
      const map = weightMap(n, perFile, tied);
      const a = Math.floor(Math.random() * n);
      const b = a + 1 + Math.floor(Math.random() * (n - a));
      const files = Math.ceil(n / perFile);
      const expected = new Set<number>();
      for (let i = a; i < b; i++) expected.add(Math.floor(i / perFile));
      if (a === 0) expected.add(0);
      if (b === n) expected.add(files - 1);
      if (b === n && tied) expected.add(0);
      const want = [...expected].map((k) => `model-${k + 1}-of-${files}.safetensors`).sort();
      expect(weightFilesForStage(map, { layerStart: a, layerEnd: b }, n, tied)).toEqual(want);
    }
  });

  test("a weight map without lm_head counts as tied even when config.json does not say so", () => {
    const map = weightMap(4, 2, true);
    expect(weightFilesForStage(map, { layerStart: 3, layerEnd: 4 }, 4, false)).toEqual([
      "model-1-of-2.safetensors",
      "model-2-of-2.safetensors",
    ]);
  });
});

describe("filesForStage", () => {
  const listing = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "README.md",
    "modeling_x.py",
    "original/params.json",
    "tokenizer.model",
    "model.safetensors",
  ];

  test("takes configs and tokenizer files but never code, docs or subfolders", () => {
    expect(listing.filter(isSupportFile)).toEqual([
      "config.json",
      "tokenizer.json",
      "tokenizer_config.json",
      "tokenizer.model",
    ]);
  });

  test("takes every top-level safetensors file when the repo has no index", () => {
    expect(filesForStage(listing, undefined, { layerStart: 1, layerEnd: 2 }, 4, false)).toEqual([
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer.model",
      "tokenizer_config.json",
    ]);
  });
});
