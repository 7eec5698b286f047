// Shared conformance suite for ShardEngine implementations (fake, runner, local MLX): every engine
// the cluster may drive must pass the same behaviour checks. Call runEngineContract from a test file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isNodeError } from "../../src/errors.ts";
import type { SamplingParams, ShardEngine, ShardSpec, StageOutput } from "../../src/engine/types.ts";

export interface EngineContractFixture {
  /** A fresh, unloaded engine refusing more than `maxLiveRequests` live requests. */
  makeEngine(opts: { maxLiveRequests: number }): Promise<ShardEngine>;
  /** The whole model (layerStart 0, layerEnd nLayers, nLayers >= 2). */
  shard: ShardSpec;
  vocabSize: number;
  hiddenSize: number;
  cleanup?(): Promise<void>;
}

const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };
const MAX_LIVE = 3;

/** Registers the contract tests for one engine implementation under `describe(name)`. */
export function runEngineContract(name: string, setup: () => Promise<EngineContractFixture>): void {
  describe(`${name} engine contract`, () => {
    let fx: EngineContractFixture;
    let whole: ShardEngine;
    const extra: ShardEngine[] = [];
    const fresh = async (maxLiveRequests = MAX_LIVE) => {
      const engine = await fx.makeEngine({ maxLiveRequests });
      extra.push(engine);
      return engine;
    };

    beforeAll(async () => {
      fx = await setup();
      whole = await fx.makeEngine({ maxLiveRequests: MAX_LIVE });
      await whole.load(fx.shard);
    });
    afterAll(async () => {
      await Promise.allSettled([whole?.close(), ...extra.map((e) => e.close())]);
      await fx?.cleanup?.();
    });

    test("reports no shard before load and the loaded shard after", async () => {
      const engine = await fresh();
      expect(engine.loaded()).toBeUndefined();
      const fractions: number[] = [];
      await engine.load(fx.shard, (f) => fractions.push(f));
      expect(engine.loaded()).toMatchObject(fx.shard);
      for (const [i, f] of fractions.entries()) {
        expect(f).toBeGreaterThanOrEqual(i === 0 ? 0 : fractions[i - 1]!);
        expect(f).toBeLessThanOrEqual(1);
      }
    });

    test("unload drops the shard and its requests; the engine loads again afterwards", async () => {
      const engine = await fresh();
      await engine.unload(); // nothing loaded yet: a no-op
      await engine.load(fx.shard);
      await generate(engine, "r-unload", [1, 2, 3], 2);
      await engine.unload();
      expect(engine.loaded()).toBeUndefined();
      expect(await engine.liveRequests()).toBe(0);
      const err = await engine.step("r-after", { kind: "tokens", tokens: [1, 2] }, GREEDY).catch((e: unknown) => e);
      expect(isNodeError(err)).toBe(true);
      await engine.load(fx.shard);
      expect(await generate(engine, "r-reloaded", [1, 2, 3], 2)).toHaveLength(2);
      await engine.end("r-reloaded");
    });

    test("refuses to step before a shard is loaded", async () => {
      const engine = await fresh();
      const err = await engine.step("r-unloaded", { kind: "tokens", tokens: [1, 2] }, GREEDY).catch((e: unknown) => e);
      expect(isNodeError(err)).toBe(true);
    });

    test("a whole-model stage turns a prompt and then single tokens into tokens of the vocabulary", async () => {
      const tokens = await generate(whole, "r-whole", [1, 2, 3, 4], 4);
      expect(tokens).toHaveLength(4);
      for (const t of tokens) expect(Number.isInteger(t) && t >= 0 && t < fx.vocabSize).toBe(true);
      expect(await whole.liveRequests()).toBe(1);
      await whole.end("r-whole");
      expect(await whole.liveRequests()).toBe(0);
    });

    test("greedy generation is deterministic across requests", async () => {
      const a = await generate(whole, "r-det-a", [5, 6, 7], 3);
      const b = await generate(whole, "r-det-b", [5, 6, 7], 3);
      await Promise.all([whole.end("r-det-a"), whole.end("r-det-b")]);
      expect(b).toEqual(a);
    });

    test("a first stage emits float32 hidden states [1, T, hidden] and two chained stages equal the whole model", async () => {
      const split = Math.max(1, Math.floor(fx.shard.nLayers / 2));
      const first = await fresh();
      const last = await fresh();
      await first.load({ ...fx.shard, layerEnd: split });
      await last.load({ ...fx.shard, layerStart: split });
      const prompt = [9, 8, 7, 6, 5];
      const chained: number[] = [];
      let input: number[] = prompt;
      for (let i = 0; i < 3; i++) {
        const hidden = await first.step("r-chain", { kind: "tokens", tokens: input }, GREEDY);
        expect(hidden.kind).toBe("hidden");
        if (hidden.kind !== "hidden") return;
        expect(hidden.tensor.dtype).toBe("float32");
        expect(hidden.tensor.shape).toEqual([1, input.length, fx.hiddenSize]);
        const out = await last.step("r-chain", { kind: "hidden", tensor: hidden.tensor }, GREEDY);
        chained.push(tokenOf(out));
        input = [chained[chained.length - 1]!];
      }
      const reference = await generate(whole, "r-chain-ref", prompt, 3);
      await Promise.all([first.end("r-chain"), last.end("r-chain"), whole.end("r-chain-ref")]);
      expect(chained).toEqual(reference);
      expect(await first.liveRequests()).toBe(0);
      expect(await last.liveRequests()).toBe(0);
    });

    test("end frees the request, is idempotent and accepts unknown ids", async () => {
      await generate(whole, "r-end", [3, 1], 1);
      expect(await whole.liveRequests()).toBe(1);
      await whole.end("r-end");
      await whole.end("r-end");
      await whole.end("r-never-started");
      expect(await whole.liveRequests()).toBe(0);
    });

    test("a request beyond the live limit fails with E_CAPACITY and the others keep working", async () => {
      const ids = Array.from({ length: MAX_LIVE }, (_, i) => `r-cap-${i}`);
      for (const id of ids) await generate(whole, id, [2, 4], 1);
      const err = await whole.step("r-cap-over", { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e);
      expect(isNodeError(err) && err.code).toBe("E_CAPACITY");
      expect(await whole.liveRequests()).toBe(MAX_LIVE);
      tokenOf(await whole.step(ids[0]!, { kind: "tokens", tokens: [1] }, GREEDY));
      await whole.end(ids[0]!);
      await generate(whole, "r-cap-over", [1], 1);
      await Promise.all([...ids, "r-cap-over"].map((id) => whole.end(id)));
      expect(await whole.liveRequests()).toBe(0);
    });

    test("steps of different requests may be in flight at once", async () => {
      const ids = ["r-par-0", "r-par-1", "r-par-2"];
      const outs = await Promise.all(
        ids.map((id, i) => whole.step(id, { kind: "tokens", tokens: [i + 1, 2, 3] }, GREEDY)),
      );
      for (const out of outs) tokenOf(out);
      await Promise.all(ids.map((id) => whole.end(id)));
      expect(await whole.liveRequests()).toBe(0);
    });

    test("a step with the wrong input kind is refused and leaves no state", async () => {
      const last = await fresh();
      await last.load({ ...fx.shard, layerStart: 1 });
      const err = await last.step("r-kind", { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e);
      expect(isNodeError(err)).toBe(true);
      expect(await last.liveRequests()).toBe(0);
    });
  });
}

/** Runs a prompt then single-token steps on a whole-model engine, returning the sampled tokens. */
async function generate(engine: ShardEngine, requestId: string, prompt: number[], count: number): Promise<number[]> {
  const out: number[] = [];
  let input = prompt;
  for (let i = 0; i < count; i++) {
    const token = tokenOf(await engine.step(requestId, { kind: "tokens", tokens: input }, GREEDY));
    out.push(token);
    input = [token];
  }
  return out;
}

function tokenOf(out: StageOutput): number {
  if (out.kind !== "token") throw new Error(`expected a token, got a ${out.kind} output`);
  return out.token;
}
