// Placement keeps KV headroom per layer from the architecture's cache size: latent attention (DeepSeek,
// Kimi) from its 576-value latent, everything else by placement's default.
import { expect, test } from "bun:test";
import { findModel, loadCatalog } from "../../../src/catalog/catalog.ts";
import { asModelId, asNodeId } from "../../../src/ids.ts";
import {
  kvBytesPerToken,
  kvHeadroomBytesPerLayer,
  PLANNED_CONTEXT_TOKENS,
} from "../../../src/models/spec/kv-headroom.ts";
import { parseModelArgs } from "../../../src/models/spec/model-args.ts";
import { placeModel } from "../../../src/topology/placement.ts";

test("DeepSeek and Kimi budget 576 values a token per layer; other architectures keep the default", () => {
  for (const arch of ["deepseek_v2", "deepseek_v3", "kimi_k2"])
    expect(kvHeadroomBytesPerLayer(arch)).toBe(576 * 2 * PLANNED_CONTEXT_TOKENS);
  expect(kvHeadroomBytesPerLayer("llama")).toBeUndefined();
  expect(kvHeadroomBytesPerLayer(undefined)).toBeUndefined();
});

test("deepseek-v3 from the catalog: the latent headroom is a small part of a layer, unlike the 1/8 default", () => {
  const entry = findModel(loadCatalog(), "deepseek-v3")!;
  expect(entry.arch).toBe("deepseek_v3");
  const model = { modelId: asModelId(entry.id), nLayers: entry.layers, weightBytes: entry.sizeBytes };
  const nodes = [
    { nodeId: asNodeId("a"), memory: 160 * 1024 },
    { nodeId: asNodeId("b"), memory: 160 * 1024 },
    { nodeId: asNodeId("c"), memory: 160 * 1024 },
  ];
  const latent = placeModel(model, nodes, { kvBytesPerLayer: kvHeadroomBytesPerLayer(entry.arch)! });
  const guessed = placeModel(model, nodes);
  const perLayer = Math.ceil(entry.sizeBytes / entry.layers);
  // Three 160 GiB nodes at 0.8 hold the 4-bit weights with latent headroom, not with 1/8 of each layer spare.
  expect(latent.ok).toBe(true);
  expect(guessed.ok).toBe(false);
  if (!guessed.ok) expect(guessed.bytesPerLayer).toBe(perLayer + Math.ceil(perLayer / 8));
});

test("KV bytes a token: keys and values of every KV head over every layer, 2 bytes a value", async () => {
  // The embedded model: 4 layers, 2 KV heads of 32 → 2 × 2 × 32 × 2 bytes × 4 layers.
  const tiny = parseModelArgs(await Bun.file(`${import.meta.dir}/../../../configs/default-model/config.json`).json());
  expect(kvBytesPerToken(tiny)).toBe(1024);
  // Llama 3.1 8B's shape: 32 layers, 8 KV heads of 128 → 128 KiB a token.
  expect(kvBytesPerToken({ ...tiny, numHiddenLayers: 32, numKeyValueHeads: 8, headDim: 128 })).toBe(131_072);
  // Latent attention caches 512 + 64 values a layer, whatever the heads.
  const latent = { kvLoraRank: 512, qkRopeHeadDim: 64 } as NonNullable<typeof tiny.deepseek>;
  expect(kvBytesPerToken({ ...tiny, deepseek: latent })).toBe(576 * 2 * 4);
});
