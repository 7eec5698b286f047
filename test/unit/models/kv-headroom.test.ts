// Placement keeps KV headroom per layer from the architecture's cache size: latent attention (DeepSeek,
// Kimi) from its 576-value latent, everything else by placement's default.
import { expect, test } from "bun:test";
import { findModel, loadCatalog } from "../../../src/catalog/catalog.ts";
import { asModelId, asNodeId } from "../../../src/ids.ts";
import { kvHeadroomBytesPerLayer, PLANNED_CONTEXT_TOKENS } from "../../../src/models/spec/kv-headroom.ts";
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
