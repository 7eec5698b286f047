// A REAL native abort (float16 matmul eval on CPU) inside the runner: the node survives, the calls in
// flight fail with a clear E_RUNNER_CRASHED, the runner restarts and the next request succeeds.
import { afterAll, expect, test } from "bun:test";
import { createRunnerEngine } from "../../src/engine/runner-client.ts";
import type { SamplingParams, ShardSpec } from "../../src/engine/types.ts";
import { isNodeError } from "../../src/errors.ts";

const SHARD: ShardSpec = { modelId: "fake", modelDir: "/nonexistent", layerStart: 0, layerEnd: 2, nLayers: 2 };
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };
const engine = createRunnerEngine({ engine: "fake", fake: { stepDelayMs: 200 }, fault: "abort-on-request:crash-" });
afterAll(() => engine.close());

test("a native abort in the runner fails the requests in flight, and the restarted runner serves the next one", async () => {
  await engine.load(SHARD);
  const abortedPid = engine.pid();
  const bystander = engine.step("bystander", { kind: "tokens", tokens: [1, 2] }, GREEDY).catch((e: unknown) => e);
  const crashing = engine.step("crash-1", { kind: "tokens", tokens: [1, 2] }, GREEDY).catch((e: unknown) => e);
  for (const err of [await crashing, await bystander]) {
    expect(isNodeError(err) && err.code).toBe("E_RUNNER_CRASHED");
    expect(String(err)).toContain(
      `engine runner (pid ${abortedPid}) died with signal SIGABRT ([Matmul::eval_cpu] Currently only supports float32.)`,
    );
  }
  const next = await engine.step("after", { kind: "tokens", tokens: [1, 2] }, GREEDY);
  expect(next.kind).toBe("token");
  expect(engine.pid()).not.toBe(abortedPid);
  expect(engine.loaded()).toEqual(SHARD);
  await engine.end("after");
  expect(await engine.liveRequests()).toBe(0);
});
