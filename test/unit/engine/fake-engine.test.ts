// The fake engine: passes the engine contract and keeps the properties network tests rely on.
import { describe, expect, test } from "bun:test";
import { createFakeEngine } from "../../../src/engine/fake-engine.ts";
import type { SamplingParams, ShardEngine, ShardSpec, StageInput } from "../../../src/engine/types.ts";
import { isNodeError } from "../../../src/errors.ts";
import { runEngineContract } from "../../helpers/engine-contract.ts";

const SHARD: ShardSpec = { modelId: "fake", modelDir: "/nonexistent", layerStart: 0, layerEnd: 6, nLayers: 6 };
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

runEngineContract("fake", async () => ({
  makeEngine: async ({ maxLiveRequests }) => createFakeEngine({ maxLiveRequests, vocabSize: 100, hiddenSize: 8 }),
  shard: SHARD,
  vocabSize: 100,
  hiddenSize: 8,
}));

/** Passes one step through a chain of engines, as the cluster does. */
async function chainStep(stages: ShardEngine[], id: string, tokens: number[], sampling = GREEDY): Promise<number> {
  let input: StageInput = { kind: "tokens", tokens };
  for (const stage of stages) {
    const out = await stage.step(id, input, sampling);
    if (out.kind === "token") return out.token;
    input = { kind: "hidden", tensor: out.tensor };
  }
  throw new Error("the chain ended without a token");
}

async function loadedChain(bounds: number[]): Promise<ShardEngine[]> {
  const stages: ShardEngine[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const engine = createFakeEngine();
    await engine.load({ ...SHARD, layerStart: bounds[i]!, layerEnd: bounds[i + 1]! });
    stages.push(engine);
  }
  return stages;
}

describe("fake engine", () => {
  test("a three-stage chain gives the same tokens as one stage, for greedy and seeded sampling", async () => {
    for (const sampling of [GREEDY, { temperature: 0.8, topP: 0.9, topK: 5, seed: 42 }]) {
      const one = await loadedChain([0, 6]);
      const three = await loadedChain([0, 1, 4, 6]);
      const run = async (stages: ShardEngine[]) => {
        const out = [await chainStep(stages, "r", [10, 20, 30], sampling)];
        for (let i = 0; i < 5; i++) out.push(await chainStep(stages, "r", [out[out.length - 1]!], sampling));
        return out;
      };
      const expected = await run(one);
      expect(await run(three)).toEqual(expected);
      expect(new Set(expected).size).toBeGreaterThan(1);
    }
  });

  test("different seeds give different tokens when sampling", async () => {
    const [engine] = await loadedChain([0, 6]);
    const a = await chainStep([engine!], "a", [1, 2], { temperature: 1, topP: 1, topK: 0, seed: 1 });
    const b = await chainStep([engine!], "b", [1, 2], { temperature: 1, topP: 1, topK: 0, seed: 2 });
    expect(a).not.toBe(b);
  });

  test("a hidden state that skipped a stage is refused with a message naming the layers", async () => {
    const [first, , last] = await loadedChain([0, 2, 4, 6]);
    const hidden = await first!.step("r", { kind: "tokens", tokens: [1, 2] }, GREEDY);
    if (hidden.kind !== "hidden") throw new Error("expected hidden");
    const err = await last!.step("r", hidden, GREEDY).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_PROTOCOL_PAYLOAD");
    expect(String(err)).toContain("passed 2 layers but this stage starts at layer 4");
  });

  test("emits the end-of-sequence token after the configured number of steps", async () => {
    const engine = createFakeEngine({ eosToken: 0, eosAfterSteps: 3 });
    await engine.load(SHARD);
    const tokens: number[] = [];
    for (let i = 0; i < 4; i++) tokens.push(await chainStep([engine], "r", [tokens[i - 1] ?? 5]));
    expect(tokens.slice(0, 3)).not.toContain(0);
    expect(tokens[3]).toBe(0);
  });

  test("a step delay leaves the event loop free", async () => {
    const engine = createFakeEngine({ stepDelayMs: 50 });
    await engine.load(SHARD);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await chainStep([engine], "r", [1]);
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(2);
  });

  test("ending a request while its step waits cancels that step and keeps no state", async () => {
    const engine = createFakeEngine({ stepDelayMs: 30 });
    await engine.load(SHARD);
    const pending = engine.step("r", { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e);
    await engine.end("r");
    const err = await pending;
    expect(isNodeError(err) && err.code).toBe("E_CANCELLED");
    expect(await engine.liveRequests()).toBe(0);
  });

  test("loading a new shard drops the requests of the old one", async () => {
    const [engine] = await loadedChain([0, 6]);
    await chainStep([engine!], "r", [1]);
    expect(await engine!.liveRequests()).toBe(1);
    await engine!.load({ ...SHARD, layerEnd: 3 });
    expect(await engine!.liveRequests()).toBe(0);
  });

  test("token ids outside the vocabulary are refused and leave no state", async () => {
    const [engine] = await loadedChain([0, 6]);
    for (const tokens of [[], [1.5], [-1], [256]]) {
      const err = await engine!.step("r", { kind: "tokens", tokens }, GREEDY).catch((e: unknown) => e);
      expect(isNodeError(err) && err.code).toBe("E_PROTOCOL_PAYLOAD");
    }
    expect(await engine!.liveRequests()).toBe(0);
  });

  test("an empty or out-of-range shard is refused", async () => {
    const engine = createFakeEngine();
    for (const [layerStart, layerEnd] of [
      [2, 2],
      [0, 7],
      [-1, 3],
    ] as const) {
      const err = await engine.load({ ...SHARD, layerStart, layerEnd }).catch((e: unknown) => e);
      expect(isNodeError(err) && err.code).toBe("E_WEIGHTS");
    }
  });
});
