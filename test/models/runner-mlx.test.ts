// The runner child hosting the MLX LocalEngine passes the shared engine contract on a tiny random Llama,
// and its greedy tokens equal those of the same engine in-process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalEngine } from "../../src/engine/local-engine.ts";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { createRunnerEngine } from "../../src/engine/runner-client.ts";
import type { SamplingParams, ShardEngine, ShardSpec } from "../../src/engine/types.ts";
import { isNodeError } from "../../src/errors.ts";
import { runEngineContract } from "../helpers/engine-contract.ts";
import { PLAIN_LLAMA } from "../helpers/tiny-models.ts";

const CONFIG = PLAIN_LLAMA;
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

runEngineContract("runner(mlx)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "exo-runner-mlx-"));
  await writeRandomCheckpoint(dir, { config: CONFIG, seed: 5 });
  return {
    makeEngine: async ({ maxLiveRequests }) => createRunnerEngine({ engine: "mlx", maxLiveRequests }),
    shard: { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 },
    vocabSize: 128,
    hiddenSize: 64,
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describe("runner(mlx)", () => {
  let dir: string;
  const engines: ShardEngine[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "exo-runner-mlx-"));
    await writeRandomCheckpoint(dir, { config: CONFIG, seed: 6 });
  });
  afterAll(async () => {
    await Promise.allSettled(engines.map((e) => e.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  test("a two-stage split across a runner and an in-process engine gives the in-process whole-model tokens", async () => {
    const whole = createLocalEngine();
    const first = createRunnerEngine({ engine: "mlx" });
    const last = createLocalEngine();
    engines.push(whole, first, last);
    const shard: ShardSpec = { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 };
    await Promise.all([
      whole.load(shard),
      first.load({ ...shard, layerEnd: 2 }),
      last.load({ ...shard, layerStart: 2 }),
    ]);
    const expected: number[] = [];
    const got: number[] = [];
    let a = [3, 1, 4, 1, 5];
    let b = a;
    for (let i = 0; i < 4; i++) {
      const w = await whole.step("w", { kind: "tokens", tokens: a }, GREEDY);
      const h = await first.step("s", { kind: "tokens", tokens: b }, GREEDY);
      if (w.kind !== "token" || h.kind !== "hidden") throw new Error("unexpected output kinds");
      const t = await last.step("s", h, GREEDY);
      if (t.kind !== "token") throw new Error("the last stage must give a token");
      expected.push(w.token);
      got.push(t.token);
      a = [w.token];
      b = [t.token];
    }
    expect(got).toEqual(expected);
  });

  test("after a load that fails half-way, loaded() reports what the runner holds, as the in-process engine does", async () => {
    const broken = mkdtempSync(join(tmpdir(), "exo-runner-broken-"));
    try {
      writeFileSync(join(broken, "config.json"), readFileSync(join(dir, "config.json")));
      writeFileSync(join(broken, "model.safetensors"), "this is not a safetensors file");
      const good: ShardSpec = { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 };
      const bad: ShardSpec = { ...good, modelId: "broken", modelDir: broken };
      const local = createLocalEngine();
      const runner = createRunnerEngine({ engine: "mlx" });
      engines.push(local, runner);
      for (const engine of [local, runner]) {
        await engine.load(good);
        const err = await engine.load(bad).catch((e: unknown) => e);
        expect(isNodeError(err)).toBe(true);
      }
      expect(runner.loaded()).toEqual(local.loaded());
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });

  test("after a native abort mid-request, the restarted MLX runner reloads the shard and answers as before", async () => {
    const engine = createRunnerEngine({ engine: "mlx", fault: "abort-on-request:crash-" });
    engines.push(engine);
    const shard: ShardSpec = { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 };
    await engine.load(shard);
    const before = await engine.step("before", { kind: "tokens", tokens: [2, 7, 1, 8] }, GREEDY);
    const err = await engine.step("crash-1", { kind: "tokens", tokens: [2, 7, 1, 8] }, GREEDY).catch((e: unknown) => e);
    expect(String(err)).toContain("died with signal SIGABRT");
    const after = await engine.step("after", { kind: "tokens", tokens: [2, 7, 1, 8] }, GREEDY);
    expect(after).toEqual(before);
    await engine.end("before");
    await engine.end("after");
    expect(await engine.liveRequests()).toBe(0);
  });
});
