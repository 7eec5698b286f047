// The MLX LocalEngine: the shared engine contract on a tiny random Llama checkpoint, request lifecycle
// (no cache outlives its request), capacity, and hidden states between three stages.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalEngine, type LocalEngine } from "../../src/engine/local-engine.ts";
import type { ShardSpec, StageInput, StageOutput } from "../../src/engine/types.ts";
import { isNodeError } from "../../src/errors.ts";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { runEngineContract } from "../helpers/engine-contract.ts";
import { PLAIN_LLAMA } from "../helpers/tiny-models.ts";

const CONFIG = PLAIN_LLAMA;

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

describe("local engine request lifecycle", () => {
  const GREEDY = { temperature: 0, topP: 1, topK: 0 };
  // Made in beforeAll, not at collection time, so a filtered run (-t) leaves no directory behind.
  let dir = "";
  let whole: ShardSpec;
  let engine: LocalEngine;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "exo-lifecycle-"));
    whole = { modelId: "tiny-llama", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 };
    await writeRandomCheckpoint(dir, { config: CONFIG, seed: 4 });
    engine = createLocalEngine({ maxLiveRequests: 8 });
    await engine.load(whole);
  });
  afterAll(async () => {
    await engine.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("100 requests cancelled in every phase (before any step, after prefill, mid-decode, after an error) leave no cache", async () => {
    const phases = ["before-first-step", "after-prefill", "mid-decode", "after-error"] as const;
    for (let i = 0; i < 100; i++) {
      const id = `life-${i}`;
      const phase = phases[i % phases.length]!;
      if (phase !== "before-first-step") {
        const first = await engine.step(id, { kind: "tokens", tokens: [1 + (i % 50), 2, 3] }, GREEDY);
        if (phase === "mid-decode" && first.kind === "token") {
          await engine.step(id, { kind: "tokens", tokens: [first.token] }, GREEDY);
        }
        if (phase === "after-error") {
          const err = await engine.step(id, { kind: "tokens", tokens: [100000] }, GREEDY).catch((e: unknown) => e);
          expect(isNodeError(err)).toBe(true);
        }
      }
      // Several requests stay live at once, then are all cancelled.
      if (i % 7 === 6 || i === 99) {
        // A failed step ends its request by itself: those ids are deliberately not end()ed.
        for (let j = i - (i % 7); j <= i; j++)
          if (phases[j % phases.length] !== "after-error") await engine.end(`life-${j}`);
        expect(await engine.liveRequests()).toBe(0);
      }
    }
    expect(await engine.liveRequests()).toBe(0);
  });

  test("a request beyond the limit gets E_CAPACITY naming the limit, and nobody's cache is evicted", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `cap-${i}`);
    const firsts = new Map<string, number>();
    for (const id of ids) {
      const out = await engine.step(id, { kind: "tokens", tokens: [5, 6, 7] }, GREEDY);
      if (out.kind === "token") firsts.set(id, out.token);
    }
    const err = await engine.step("cap-over", { kind: "tokens", tokens: [5, 6, 7] }, GREEDY).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_CAPACITY");
    expect(String((err as Error).message)).toContain("limit 8");
    // Every live request continues from its own cache: its next token equals a fresh run of the same history.
    const next = await engine.step("cap-0", { kind: "tokens", tokens: [firsts.get("cap-0")!] }, GREEDY);
    for (const id of ids) await engine.end(id);
    const replay = await engine.step("cap-replay", { kind: "tokens", tokens: [5, 6, 7, firsts.get("cap-0")!] }, GREEDY);
    await engine.end("cap-replay");
    expect(next).toEqual(replay);
    expect(await engine.liveRequests()).toBe(0);
  });

  test("a request's seed makes sampled generations repeatable, and another seed changes them", async () => {
    const sample = async (id: string, seed: number) => {
      const params = { temperature: 1.5, topP: 0.95, topK: 50, seed };
      const tokens: number[] = [];
      let input: number[] = [11, 22, 33];
      for (let i = 0; i < 12; i++) {
        const out = await engine.step(id, { kind: "tokens", tokens: input }, params);
        if (out.kind !== "token") throw new Error("expected a token");
        tokens.push(out.token);
        input = [out.token];
      }
      await engine.end(id);
      return tokens;
    };
    const a = await sample("seed-a", 7);
    expect(await sample("seed-b", 7)).toEqual(a);
    expect(await sample("seed-c", 8)).not.toEqual(a);
  });

  test("hidden states cross stages as float32 bytes and a middle stage runs between first and last", async () => {
    const stages = await Promise.all(
      [
        [0, 1],
        [1, 3],
        [3, 4],
      ].map(async ([a, b]) => {
        const e = createLocalEngine();
        await e.load({ ...whole, layerStart: a!, layerEnd: b! });
        return e;
      }),
    );
    let input: StageInput = { kind: "tokens", tokens: [9, 8, 7] };
    let token = -1;
    for (const s of stages) {
      const out = await s.step("mid", input, GREEDY);
      if (out.kind === "token") token = out.token;
      else {
        expect(out.tensor.dtype).toBe("float32");
        expect(out.tensor.bytes.byteLength).toBe(3 * 64 * 4);
        input = { kind: "hidden", tensor: out.tensor };
      }
    }
    const ref = await engine.step("mid-ref", { kind: "tokens", tokens: [9, 8, 7] }, GREEDY);
    await engine.end("mid-ref");
    expect(ref).toEqual({ kind: "token", token });
    expect(stages[1]!.lastLoad()!.tensorsRead.every((n) => /^model\.layers\.[12]\./.test(n))).toBe(true);
    await Promise.all(stages.map((s) => s.close()));
  });
});

describe("local engine prefill and loading", () => {
  const GREEDY = { temperature: 0, topP: 1, topK: 0 };
  let dir = "";
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "exo-chunked-"));
    await writeRandomCheckpoint(dir, { config: CONFIG, seed: 6 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("a prompt prefilled in chunks gives the same hidden states and tokens as one pass", async () => {
    const prompt = Array.from({ length: 23 }, (_, i) => (i * 13) % 128);
    const run = async (prefillChunkTokens: number) => {
      const first = createLocalEngine({ prefillChunkTokens });
      const last = createLocalEngine({ prefillChunkTokens });
      await first.load({ modelId: "t", modelDir: dir, layerStart: 0, layerEnd: 2, nLayers: 4 });
      await last.load({ modelId: "t", modelDir: dir, layerStart: 2, layerEnd: 4, nLayers: 4 });
      const tokens: number[] = [];
      let input: StageInput = { kind: "tokens", tokens: prompt };
      let hidden: Float32Array | undefined;
      for (let i = 0; i < 3; i++) {
        const h = await first.step("c", input, GREEDY);
        if (h.kind !== "hidden") throw new Error("expected hidden");
        hidden ??= new Float32Array(h.tensor.bytes.slice().buffer);
        const out = await last.step("c", { kind: "hidden", tensor: h.tensor }, GREEDY);
        if (out.kind !== "token") throw new Error("expected a token");
        tokens.push(out.token);
        input = { kind: "tokens", tokens: [out.token] };
      }
      await Promise.all([first.close(), last.close()]);
      return { tokens, hidden: hidden! };
    };
    const whole = await run(512);
    const chunked = await run(5);
    expect(chunked.tokens).toEqual(whole.tokens);
    expect(chunked.hidden.length).toBe(23 * 64);
    const worst = chunked.hidden.reduce((m, v, i) => Math.max(m, Math.abs(v - whole.hidden[i]!)), 0);
    expect(worst).toBeLessThan(1e-4);
  });

  test("end() during a chunked prefill stops it with E_CANCELLED and leaves no cache", async () => {
    const engine = createLocalEngine({ prefillChunkTokens: 2 });
    await engine.load({ modelId: "t", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 });
    const pending = engine.step(
      "cancel-me",
      { kind: "tokens", tokens: Array.from({ length: 20 }, (_, i) => i) },
      GREEDY,
    );
    await engine.end("cancel-me");
    const err = await pending.catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_CANCELLED");
    expect(await engine.liveRequests()).toBe(0);
    await engine.close();
  });

  test("a checkpoint without lm_head is run with its embedding as the head even if config.json says untied", async () => {
    const untied = mkdtempSync(join(tmpdir(), "exo-nohead-"));
    try {
      await writeRandomCheckpoint(untied, { config: { ...CONFIG, tie_word_embeddings: true }, seed: 8 });
      const cfgPath = join(untied, "config.json");
      const tiedOut = await runOnce(untied);
      await Bun.write(cfgPath, JSON.stringify({ ...(await Bun.file(cfgPath).json()), tie_word_embeddings: false }));
      expect(await runOnce(untied)).toEqual(tiedOut);
    } finally {
      rmSync(untied, { recursive: true, force: true });
    }
  });

  test("two loads issued at once run one after the other and the last one wins", async () => {
    const engine = createLocalEngine();
    const a = engine.load({ modelId: "t", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 });
    const b = engine.load({ modelId: "t", modelDir: dir, layerStart: 2, layerEnd: 4, nLayers: 4 });
    await Promise.all([a, b]);
    expect(engine.loaded()?.layerStart).toBe(2);
    expect(engine.lastLoad()!.tensorsRead.some((n) => n.startsWith("model.layers.0."))).toBe(false);
    await engine.close();
  });
});

async function runOnce(modelDir: string): Promise<StageOutput> {
  const engine = createLocalEngine();
  await engine.load({ modelId: "t", modelDir, layerStart: 0, layerEnd: 4, nLayers: 4 });
  const out = await engine.step("once", { kind: "tokens", tokens: [4, 5, 6] }, { temperature: 0, topP: 1, topK: 0 });
  await engine.close();
  return out;
}
