// The MLX LocalEngine passes the shared engine contract on a tiny random Llama checkpoint.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalEngine } from "../../src/engine/local-engine.ts";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { runEngineContract } from "../helpers/engine-contract.ts";

const CONFIG = {
  model_type: "llama",
  hidden_size: 64,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  intermediate_size: 128,
  vocab_size: 128,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
};

runEngineContract("local MLX", async () => {
  const dir = mkdtempSync(join(tmpdir(), "exo-local-engine-"));
  await writeRandomCheckpoint(dir, { config: CONFIG, seed: 3 });
  return {
    makeEngine: async ({ maxLiveRequests }) => createLocalEngine({ maxLiveRequests }),
    shard: { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 },
    vocabSize: 128,
    hiddenSize: 64,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
