// Continuous batching in the MLX engine: requests stepped concurrently (so their decode steps share one
// forward) produce exactly the tokens each produces alone, on one stage and through three stages, with
// requests joining mid-way, ending early, a long prompt prefilled in chunks meanwhile, and seeded sampling.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalEngine, type LocalEngine } from "../../src/engine/local-engine.ts";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import type { SamplingParams, ShardSpec, StageInput } from "../../src/engine/types.ts";
import { PLAIN_LLAMA } from "../helpers/tiny-models.ts";

const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

interface Ask {
  id: string;
  prompt: number[];
  tokens: number;
  sampling: SamplingParams;
  /** Steps of other requests to wait for before starting (joins mid-way). */
  joinAfter?: number;
}

/** Runs one request through a chain of engines (one per stage); returns its sampled tokens. */
async function generate(stages: LocalEngine[], ask: Ask, progress?: { steps: number }): Promise<number[]> {
  const out: number[] = [];
  let input: StageInput = { kind: "tokens", tokens: ask.prompt };
  const hints = { stages: stages.length };
  try {
    while (out.length < ask.tokens) {
      let x: StageInput = input;
      for (const engine of stages) {
        const y = await engine.step(ask.id, x, ask.sampling, hints);
        if (y.kind === "token") {
          out.push(y.token);
          input = { kind: "tokens", tokens: [y.token] };
        } else x = y;
      }
      if (progress) progress.steps++;
    }
  } finally {
    for (const engine of stages) await engine.end(ask.id);
  }
  return out;
}

async function waitSteps(progress: { steps: number }, n: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (progress.steps < n) {
    if (Date.now() > deadline) throw new Error(`no progress to ${n} steps`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Every request alone (one after another), then all at once; the same tokens either way. */
async function aloneVersusBatched(stages: () => LocalEngine[], asks: Ask[]): Promise<void> {
  const alone: number[][] = [];
  const engines = stages();
  for (const ask of asks) alone.push(await generate(engines, ask));
  const progress = { steps: 0 };
  const batched = await Promise.all(
    asks.map(async (ask) => {
      if (ask.joinAfter) await waitSteps(progress, ask.joinAfter);
      return generate(engines, ask, progress);
    }),
  );
  expect(batched).toEqual(alone);
  for (const e of engines) {
    expect(await e.liveRequests()).toBe(0);
    expect((await e.batchStats!()).peakBatch).toBeGreaterThan(1);
  }
}

function asks(n: number, sampling: SamplingParams, seedBase?: number): Ask[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    prompt: Array.from({ length: 2 + ((i * 5) % 11) }, (_, k) => 1 + ((i * 7 + k * 3) % 120)),
    // Different lengths: some end early while others keep decoding.
    tokens: 4 + ((i * 3) % 9),
    sampling: seedBase === undefined ? sampling : { ...sampling, seed: seedBase + i },
    ...(i >= n / 2 ? { joinAfter: 3 + i } : {}),
  }));
}

describe("batched decode in the MLX engine", () => {
  let dir = "";
  const engines: LocalEngine[] = [];
  const shard = (layerStart: number, layerEnd: number): ShardSpec => ({
    modelId: "tiny-llama",
    modelDir: dir,
    layerStart,
    layerEnd,
    nLayers: 4,
  });
  let whole: LocalEngine;
  let split: LocalEngine[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "exo-batch-engine-"));
    await writeRandomCheckpoint(dir, { config: PLAIN_LLAMA, seed: 11 });
    // Small prefill chunks, so the longer prompts are prefilled in several ticks between decode batches.
    whole = createLocalEngine({ prefillChunkTokens: 4 });
    await whole.load(shard(0, 4));
    split = [createLocalEngine({ prefillChunkTokens: 4 }), createLocalEngine(), createLocalEngine()];
    await split[0]!.load(shard(0, 1));
    await split[1]!.load(shard(1, 3));
    await split[2]!.load(shard(3, 4));
    engines.push(whole, ...split);
  });
  afterAll(async () => {
    for (const e of engines) await e.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("8 and 16 greedy requests batched equal each alone, on one stage (joins mid-way, early ends)", async () => {
    await aloneVersusBatched(() => [whole], asks(8, GREEDY));
    await aloneVersusBatched(() => [whole], asks(16, GREEDY));
  });

  test("8 and 16 greedy requests batched equal each alone through three stages", async () => {
    await aloneVersusBatched(() => split, asks(8, GREEDY));
    await aloneVersusBatched(() => split, asks(16, GREEDY));
  });

  test("seeded sampled requests batched equal each alone, mixed with greedy ones", async () => {
    const sampled = asks(8, { temperature: 0.9, topP: 0.9, topK: 20 }, 100);
    const mixed = sampled.map((a, i) => (i % 3 === 0 ? { ...a, sampling: GREEDY } : a));
    await aloneVersusBatched(() => [whole], mixed);
    await aloneVersusBatched(() => split, mixed);
  });

  test("a request ended while its step waits for a tick is refused and leaves no state", async () => {
    const engine = whole;
    const a = generate([engine], {
      id: "long",
      prompt: Array.from({ length: 40 }, (_, k) => 1 + k),
      tokens: 3,
      sampling: GREEDY,
    });
    const waiting = engine.step("gone", { kind: "tokens", tokens: [5, 6, 7] }, GREEDY);
    await engine.end("gone");
    const err = await waiting.catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("E_CANCELLED");
    await a;
    expect(await engine.liveRequests()).toBe(0);
  });
});

describe("the engine before batching (maxBatch 1)", () => {
  test("gives the same tokens as the batching engine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "exo-batch-legacy-"));
    try {
      await writeRandomCheckpoint(dir, { config: PLAIN_LLAMA, seed: 12 });
      const spec = { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 };
      const legacy = createLocalEngine({ maxBatch: 1 });
      const batching = createLocalEngine();
      await legacy.load(spec);
      await batching.load(spec);
      const list = asks(6, GREEDY).map(({ joinAfter: _, ...a }) => a);
      const before = await Promise.all(list.map((a) => generate([legacy], a)));
      const after = await Promise.all(list.map((a) => generate([batching], a)));
      expect(after).toEqual(before);
      expect((await legacy.batchStats!()).peakBatch).toBe(0);
      await legacy.close();
      await batching.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
