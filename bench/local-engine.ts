// LocalEngine overhead vs a minimal MLX loop on the same weights, side by side in one run (alternating),
// plus load time of the float32 checkpoint and of its 4-bit twin (dequantized at load).
// Usage: nice -n 10 bun bench/local-engine.ts [--model DIR] [--prompt 128] [--decode 32] [--rounds 3]
// (with --model, e.g. a 1b model from scripts/make-random-model.ts, only that checkpoint's load is timed)
import { core as mx } from "@frost-beta/mlx";
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLocalEngine } from "../src/engine/local-engine.ts";
import { releaseMemory } from "../src/engine/memory.ts";
import { writeRandomCheckpoint } from "../src/engine/random-checkpoint.ts";
import { checkpointIndex, loadShardWeights } from "../src/engine/weights.ts";
import { stageTensorFilter } from "../src/models/spec/architectures.ts";
import { readConfigFile } from "../src/models/spec/config-file.ts";
import { parseModelArgs } from "../src/models/spec/model-args.ts";
import { getArchitecture } from "../src/models/index.ts";
import { createKVCache } from "../src/models/kv-cache.ts";

const { values: opt } = parseArgs({
  options: {
    model: { type: "string" },
    prompt: { type: "string", default: "128" },
    decode: { type: "string", default: "32" },
    rounds: { type: "string", default: "3" },
  },
});
const PROMPT = Array.from({ length: Number(opt.prompt) }, (_, i) => (i * 7919) % 1000);
const DECODE = Number(opt.decode);
const CONFIG = {
  model_type: "llama",
  hidden_size: 512,
  num_hidden_layers: 8,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  intermediate_size: 1536,
  vocab_size: 32000,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  tie_word_embeddings: true,
};

const made: string[] = [];
let dir = opt.model;
if (!dir) {
  dir = join(tmpdir(), `exo-bench-engine-${process.pid}`);
  made.push(dir);
  await writeRandomCheckpoint(dir, { config: CONFIG, seed: 1 });
}
const args = parseModelArgs(await readConfigFile(dir));
const nLayers = args.numHiddenLayers;
const shard = { modelId: "bench", modelDir: dir, layerStart: 0, layerEnd: nLayers, nLayers };

/** Minimal loop: the model's forward, argmax, yield + GC every 4 tokens; no engine bookkeeping. */
async function minimalRun(): Promise<{ prefillTps: number; decodeTps: number; tokens: number[] }> {
  const range = { layerStart: 0, layerEnd: nLayers, nLayers };
  const arch = getArchitecture(args.modelType);
  const { weights } = await loadShardWeights(dir!, stageTensorFilter(args, range, checkpointIndex(dir!).keys()), {
    quantization: args.quantization,
  });
  const model = arch.create(args, range, weights);
  const cache = createKVCache(model.cacheSpec);
  let t0 = performance.now();
  let token = Number(mx.argmax(model.forward(mx.array([PROMPT], mx.int32), cache).reshape([-1])).item());
  const prefillMs = performance.now() - t0;
  const tokens = [token];
  t0 = performance.now();
  for (let i = 0; i < DECODE; i++) {
    token = Number(mx.argmax(model.forward(mx.array([[token]], mx.int32), cache).reshape([-1])).item());
    tokens.push(token);
    if (i % 4 === 3) await releaseMemory();
  }
  return {
    prefillTps: PROMPT.length / (prefillMs / 1000),
    decodeTps: DECODE / ((performance.now() - t0) / 1000),
    tokens,
  };
}

async function engineRun(): Promise<{ prefillTps: number; decodeTps: number; tokens: number[] }> {
  const engine = createLocalEngine();
  await engine.load(shard);
  const greedy = { temperature: 0, topP: 1, topK: 0 };
  const tokenOf = (o: { kind: string; token?: number }) => o.token!;
  let t0 = performance.now();
  let token = tokenOf(await engine.step("b", { kind: "tokens", tokens: PROMPT }, greedy));
  const prefillMs = performance.now() - t0;
  const tokens = [token];
  t0 = performance.now();
  for (let i = 0; i < DECODE; i++) {
    token = tokenOf(await engine.step("b", { kind: "tokens", tokens: [token] }, greedy));
    tokens.push(token);
  }
  const decodeTps = DECODE / ((performance.now() - t0) / 1000);
  await engine.close();
  return { prefillTps: PROMPT.length / (prefillMs / 1000), decodeTps, tokens };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const runs: Record<string, { prefill: number[]; decode: number[] }> = {
  minimal: { prefill: [], decode: [] },
  engine: { prefill: [], decode: [] },
};
let reference: number[] | undefined;
for (let r = 0; r < Number(opt.rounds); r++) {
  for (const [name, fn] of [
    ["minimal", minimalRun],
    ["engine", engineRun],
  ] as const) {
    const res = await fn();
    reference ??= res.tokens;
    if (res.tokens.join() !== reference.join()) throw new Error(`${name} produced different greedy tokens`);
    runs[name]!.prefill.push(res.prefillTps);
    runs[name]!.decode.push(res.decodeTps);
    await releaseMemory();
  }
}

// Load times: the float32 checkpoint and a 4-bit copy of the same random weights.
const loadMs: Record<string, number> = {};
// A 4-bit twin is written only for the generated bench model (quantizing a user's 1B model takes long).
const qdir = `${dir}-q4`;
if (!opt.model && !existsSync(join(qdir, "config.json"))) {
  await writeRandomCheckpoint(qdir, { config: CONFIG, seed: 1, quantize: { bits: 4, groupSize: 64 } });
  made.push(qdir);
}
const loads = opt.model
  ? [["f32", dir]]
  : [
      ["f32", dir],
      ["q4 (dequantized at load)", qdir],
    ];
for (const [name, d] of loads as [string, string][]) {
  const engine = createLocalEngine();
  await engine.load({ ...shard, modelDir: d });
  loadMs[name] = engine.lastLoad()!.loadMs;
  await engine.close();
}

const m = { prefill: median(runs.minimal!.prefill), decode: median(runs.minimal!.decode) };
const e = { prefill: median(runs.engine!.prefill), decode: median(runs.engine!.decode) };
console.log(
  `model ${dir} (${nLayers} layers, hidden ${args.hiddenSize}), prompt ${PROMPT.length}, decode ${DECODE}, ${opt.rounds} rounds`,
);
console.log("path     | prefill tok/s | decode tok/s");
console.log(`minimal  | ${m.prefill.toFixed(1).padStart(13)} | ${m.decode.toFixed(2).padStart(12)}`);
console.log(`engine   | ${e.prefill.toFixed(1).padStart(13)} | ${e.decode.toFixed(2).padStart(12)}`);
console.log(
  `engine/minimal: prefill x${(e.prefill / m.prefill).toFixed(3)}, decode x${(e.decode / m.decode).toFixed(3)}`,
);
for (const [k, v] of Object.entries(loadMs)) console.log(`load ${k}: ${v.toFixed(0)} ms`);
console.log(
  JSON.stringify({
    bench: "local-engine",
    minimal: m,
    engine: e,
    ratio: { prefill: e.prefill / m.prefill, decode: e.decode / m.decode },
    loadMs,
  }),
);
if (!opt.model) for (const d of made) rmSync(d, { recursive: true, force: true });
