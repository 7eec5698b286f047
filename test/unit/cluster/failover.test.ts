// failoverTokens on scripted attempts: the replay carries prompt + streamed tokens and the next token index,
// failovers are bounded, a recovery past its deadline is E_TIMEOUT, and errors a new plan cannot cure pass through.
import { describe, expect, test } from "bun:test";
import { NodeError, errorCode } from "../../../src/errors.ts";
import { asModelId, asNodeId } from "../../../src/ids.ts";
import { failoverTokens, type Attempt, type FailoverDeps } from "../../../src/cluster/failover.ts";
import type { Plan } from "../../../src/cluster/messages.ts";
import { createModelStates } from "../../../src/cluster/model-states.ts";

const plan = (...nodes: string[]): Plan => ({
  modelId: asModelId("m"),
  nLayers: nodes.length,
  stages: nodes.map((n, i) => ({ nodeId: asNodeId(n), layerStart: i, layerEnd: i + 1 })),
});

/** Token k of the answer is 100 + k, whatever the plan; attempt i fails after `failAfter[i]` tokens. */
function scripted(failAfter: number[], error = () => new NodeError("E_PEER_DOWN", "node b went down")) {
  const attempts: Attempt[] = [];
  const deps: FailoverDeps = {
    async *run(a) {
      const i = attempts.push(a) - 1;
      for (let k = 0; k < a.maxTokens; k++) {
        if (k === failAfter[i]) throw error();
        yield 100 + a.startIndex + k;
      }
    },
    replan: async () => plan("a", "c"),
    prepare: async () => {},
  };
  return { attempts, deps };
}

async function all(it: AsyncIterable<number>): Promise<number[]> {
  const out: number[] = [];
  for await (const t of it) out.push(t);
  return out;
}

const limits = { maxFailovers: 3, recoveryMs: 5000 };
const first = { plan: plan("a", "b"), prompt: [1, 2, 3], maxTokens: 10 };
const signal = () => new AbortController().signal;

describe("failoverTokens", () => {
  test("a broken plan is replaced and the replay is prompt + streamed tokens: no gap, no duplicate", async () => {
    const { attempts, deps } = scripted([4, 3]);
    expect(await all(failoverTokens(first, deps, limits, signal()))).toEqual(
      Array.from({ length: 10 }, (_, k) => 100 + k),
    );
    expect(attempts.map((a) => [a.tokens, a.maxTokens, a.startIndex])).toEqual([
      [[1, 2, 3], 10, 0],
      [[1, 2, 3, 100, 101, 102, 103], 6, 4],
      [[1, 2, 3, 100, 101, 102, 103, 104, 105, 106], 3, 7],
    ]);
    expect(attempts[1]!.plan.stages.map((s) => String(s.nodeId))).toEqual(["a", "c"]);
  });

  test("past --max-failovers the error reaches the consumer", async () => {
    const { deps } = scripted([2, 2, 2]);
    const err = await all(failoverTokens(first, deps, { ...limits, maxFailovers: 2 }, signal())).catch((e) => e);
    expect(errorCode(err)).toBe("E_PEER_DOWN");
  });

  test("an error no new plan cures (cancelled, context) is not failed over", async () => {
    const { attempts, deps } = scripted([2], () => new NodeError("E_CONTEXT_LENGTH", "too long"));
    expect(errorCode(await all(failoverTokens(first, deps, limits, signal())).catch((e) => e))).toBe(
      "E_CONTEXT_LENGTH",
    );
    expect(attempts).toHaveLength(1);
  });

  test("a replan that says the model no longer fits ends the stream with that error", async () => {
    const { deps } = scripted([2]);
    deps.replan = async () => {
      throw new NodeError("E_MODEL_TOO_BIG", "m does not fit: it needs 1 GB");
    };
    const err = await all(failoverTokens(first, deps, limits, signal())).catch((e) => e);
    expect(errorCode(err)).toBe("E_MODEL_TOO_BIG");
  });

  test("a recovery that outlasts --recovery-ms is E_TIMEOUT naming the cause", async () => {
    const { deps } = scripted([2]);
    deps.prepare = () => new Promise(() => {});
    const err = (await all(failoverTokens(first, deps, { ...limits, recoveryMs: 50 }, signal())).catch(
      (e) => e,
    )) as Error;
    expect(errorCode(err)).toBe("E_TIMEOUT");
    expect(err.message).toContain("node b went down");
  });
});

describe("model states", () => {
  test("each change is said once; a repeat says nothing; degraded keeps the broken plan", () => {
    const lines: string[] = [];
    const states = createModelStates((line) => lines.push(line));
    states.set("m", "re-placing", plan("a", "b"), "failover");
    states.set("m", "ready", plan("a", "b"));
    states.set("m", "ready", plan("a", "b"));
    states.set("m", "degraded", undefined, "node b went down");
    expect(lines).toEqual([
      "model m: re-placing on a[0,1) → b[1,2) (failover)",
      "model m: re-placing → ready on a[0,1) → b[1,2)",
      "model m: ready → degraded (node b went down)",
    ]);
    expect(states.get("m")?.plan).toEqual(plan("a", "b"));
  });
});
