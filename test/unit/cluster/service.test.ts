import { afterEach, describe, expect, test } from "bun:test";
import { errorCode, NodeError } from "../../../src/errors.ts";
import type { ShardEngine } from "../../../src/engine/types.ts";
import { waitFor } from "../../helpers/wait.ts";
import {
  collect,
  createMemoryCluster,
  EOS,
  request,
  waitAllFree,
  type MemoryCluster,
} from "../../helpers/memory-cluster.ts";

let clusters: MemoryCluster[] = [];
function cluster(...args: Parameters<typeof createMemoryCluster>): MemoryCluster {
  const c = createMemoryCluster(...args);
  clusters.push(c);
  return c;
}
afterEach(() => {
  clusters.forEach((c) => c.close());
  clusters = [];
});

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("cluster service", () => {
  test("a 3-stage chain generates the same text as a single stage, for several prompts", async () => {
    const one = cluster({ solo: 6 });
    const three = cluster({ a: 2, b: 1, c: 3 });
    for (const prompt of ["count", "hello there", "x"]) {
      const solo = await collect(one.services.get("solo")!.generate(request({ prompt }), new AbortController().signal));
      // The coordinator of the 3-stage run is the middle stage: any node can coordinate.
      const chain = await collect(three.services.get("b")!.generate(request({ prompt }), new AbortController().signal));
      expect(chain.text).toBe(solo.text);
      expect(chain.text.length).toBe(12);
      expect(chain.done).toEqual(solo.done);
    }
    await waitAllFree(three);
  });

  test("prepare has each stage fetch and load exactly its own layer range, and reports progress", async () => {
    const c = cluster({ a: 2, b: 1, c: 3 });
    const statuses: string[] = [];
    const plan = await c.services.get("a")!.prepare("fake-6", (s) => statuses.push(`${s.nodeId}:${s.phase}`));
    expect(plan).toEqual(c.plan);
    expect(c.fetched.sort()).toEqual(["a:0-2", "b:2-3", "c:3-6"]);
    for (const [id, stage] of [
      ["a", [0, 2]],
      ["b", [2, 3]],
      ["c", [3, 6]],
    ] as const) {
      const shard = c.engines.get(id)!.loaded()!;
      expect([shard.layerStart, shard.layerEnd, shard.nLayers]).toEqual([...stage, 6]);
    }
    for (const id of ["a", "b", "c"]) expect(statuses).toContain(`${id}:ready`);
    // Download progress is broadcast: the coordinator hears each peer's, with exo's progress dict.
    await waitFor(
      () => ["b", "c"].every((id) => c.statuses.get("a")!.some((s) => s.nodeId === id && s.progress?.node === id)),
      { what: "peers' download STATUS" },
    );
  });

  test("an unknown model fails with E_MODEL_UNKNOWN and nothing is fetched", async () => {
    const c = cluster({ a: 6 });
    const err = await caught(
      collect(c.services.get("a")!.generate(request({ modelId: "nope" }), new AbortController().signal)),
    );
    expect(errorCode(err)).toBe("E_MODEL_UNKNOWN");
    expect(c.fetched).toEqual([]);
  });

  test("a prompt that fills the context window is refused with E_CONTEXT_LENGTH before any stage prepares", async () => {
    const c = cluster({ a: 3, b: 3 }, { contextWindow: 16 });
    const signal = new AbortController().signal;
    const err = await caught(collect(c.services.get("a")!.generate(request({ prompt: "x".repeat(16) }), signal)));
    expect(errorCode(err)).toBe("E_CONTEXT_LENGTH");
    expect((err as Error).message).toBe(
      "fake-6's context window is 16 tokens (prompt and answer), but the request needs 16 for its prompt, leaving no room for an answer; shorten the prompt",
    );
    // Only the coordinator's tokenizer files (the empty range) were fetched; no stage downloaded or loaded.
    expect(c.fetched).toEqual(["a:0-0"]);
    expect([c.engines.get("a")!.loaded(), c.engines.get("b")!.loaded()]).toEqual([undefined, undefined]);
  });

  test("max_tokens beyond the context window is clamped: generation stops with length at the window", async () => {
    const c = cluster({ a: 3, b: 3 }, { contextWindow: 16 });
    const signal = new AbortController().signal;
    const long = await collect(c.services.get("b")!.generate(request({ prompt: "count", maxTokens: 100 }), signal));
    expect(long.done).toEqual({
      kind: "done",
      finishReason: "length",
      usage: { promptTokens: 5, completionTokens: 11 },
    });
    const short = await collect(c.services.get("b")!.generate(request({ prompt: "count", maxTokens: 4 }), signal));
    expect(short.done.usage.completionTokens).toBe(4);
    await waitAllFree(c);
  });

  test("each way a request can end frees its state on every stage", async () => {
    const c = cluster({ a: 2, b: 2, c: 2 }, { engine: { stepDelayMs: 2 } });
    const svc = c.services.get("a")!;
    const full = await collect(svc.generate(request({ maxTokens: 10 }), new AbortController().signal));
    expect(full.done.finishReason).toBe("length");
    await waitAllFree(c);

    const stop = full.text.slice(4, 6);
    const stopped = await collect(svc.generate(request({ maxTokens: 10, stop: [stop] }), new AbortController().signal));
    expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(stopped.done.finishReason).toBe("stop");
    await waitAllFree(c);

    // The consumer walks away mid-stream (the HTTP client disconnected).
    for await (const e of svc.generate(request({ maxTokens: 1000 }), new AbortController().signal))
      if (e.kind === "text") break;
    await waitAllFree(c);

    // The request's AbortSignal fires mid-stream.
    const ac = new AbortController();
    const aborted = caught(
      (async () => {
        for await (const e of svc.generate(request({ maxTokens: 1000 }), ac.signal)) if (e.kind === "text") ac.abort();
      })(),
    );
    expect(errorCode(await aborted)).toBe("E_CANCELLED");
    await waitAllFree(c);
  });

  test("an EOS token ends the request with finish_reason stop and frees every stage", async () => {
    const c = cluster({ a: 3, b: 3 }, { engine: { eosAfterSteps: 4 } });
    const r = await collect(c.services.get("b")!.generate(request({ maxTokens: 50 }), new AbortController().signal));
    expect(r.done).toMatchObject({ finishReason: "stop", usage: { completionTokens: 5 } });
    expect(r.text.length).toBe(4);
    await waitAllFree(c);
  });

  test("a stage whose engine fails reports the error to the coordinator and no node keeps state", async () => {
    let failNext = false;
    const wrap = (id: string, e: ShardEngine): ShardEngine =>
      id !== "b"
        ? e
        : {
            ...e,
            async step(rid, input, sampling) {
              if (failNext) throw new NodeError("E_RUNNER_CRASHED", "runner died (test)");
              return e.step(rid, input, sampling);
            },
          };
    const c = cluster({ a: 2, b: 2, c: 2 }, { wrapEngine: wrap });
    const svc = c.services.get("c")!;
    const ac = new AbortController();
    const err = await caught(
      (async () => {
        for await (const e of svc.generate(request({ maxTokens: 1000 }), ac.signal))
          if (e.kind === "text") failNext = true;
      })(),
    );
    expect(errorCode(err)).toBe("E_RUNNER_CRASHED");
    expect((err as Error).message).toContain("stage b");
    await waitAllFree(c);
  });

  test("a stage going down mid-request fails it with E_PEER_DOWN and the survivors free its state", async () => {
    const c = cluster({ a: 2, b: 2, c: 2 }, { engine: { stepDelayMs: 2 } });
    const err = await caught(
      (async () => {
        let n = 0;
        for await (const e of c.services
          .get("a")!
          .generate(request({ maxTokens: 100_000 }), new AbortController().signal)) {
          if (e.kind === "text" && ++n === 3) c.net.kill("b");
        }
      })(),
    );
    expect(errorCode(err)).toBe("E_PEER_DOWN");
    expect((err as Error).message).toContain("b");
    await waitAllFree(c, ["a", "c"]);
  });

  test("a request fails with E_TIMEOUT when no token comes, and the stages are told to end it", async () => {
    const c = cluster({ a: 3, b: 3 }, { engine: { stepDelayMs: 300 }, tokenTimeoutMs: 50 });
    const err = await caught(collect(c.services.get("a")!.generate(request(), new AbortController().signal)));
    expect(errorCode(err)).toBe("E_TIMEOUT");
    await waitAllFree(c);
  });

  test("16 concurrent requests each get their own answer, and stages step different requests at once", async () => {
    const inFlight = new Map<string, number>();
    const maxInFlight = new Map<string, number>();
    const wrap = (id: string, e: ShardEngine): ShardEngine => ({
      ...e,
      async step(rid, input, sampling) {
        inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
        maxInFlight.set(id, Math.max(maxInFlight.get(id) ?? 0, inFlight.get(id)!));
        try {
          return await e.step(rid, input, sampling);
        } finally {
          inFlight.set(id, inFlight.get(id)! - 1);
        }
      },
    });
    const prompts = Array.from({ length: 16 }, (_, i) => `prompt number ${i} ${"z".repeat(i)}`);
    const solo = cluster({ solo: 6 });
    const expected = await Promise.all(
      prompts.map((prompt) =>
        collect(solo.services.get("solo")!.generate(request({ prompt }), new AbortController().signal)),
      ),
    );
    const c = cluster({ a: 2, b: 2, c: 2 }, { engine: { stepDelayMs: 3 }, wrapEngine: wrap });
    const got = await Promise.all(
      prompts.map((prompt, i) =>
        collect(c.services.get(["a", "b", "c"][i % 3]!)!.generate(request({ prompt }), new AbortController().signal)),
      ),
    );
    expect(got.map((g) => g.text)).toEqual(expected.map((e) => e.text));
    expect(new Set(got.map((g) => g.text)).size).toBeGreaterThan(1);
    for (const id of ["a", "b", "c"]) expect(maxInFlight.get(id)!).toBeGreaterThan(1);
    await waitAllFree(c);
  });

  test("EOS is never streamed as text", async () => {
    const c = cluster({ a: 6 }, { engine: { eosAfterSteps: 2 } });
    const events = [];
    for await (const e of c.services.get("a")!.generate(request(), new AbortController().signal)) events.push(e);
    expect(
      events
        .filter((e) => e.kind === "text")
        .map((e) => (e.kind === "text" ? e.text : ""))
        .join(""),
    ).not.toContain(String.fromCharCode(97 + (EOS % 26)).repeat(3));
    expect(events.at(-1)).toMatchObject({ kind: "done", finishReason: "stop", usage: { completionTokens: 3 } });
  });

  test("a TENSOR that arrives after its request's END creates no state on the stage", async () => {
    const c = cluster({ a: 3, b: 3 });
    await c.services.get("a")!.prepare("fake-6");
    const transport = c.net.add("probe");
    const route = {
      requestId: "late-1",
      coordinator: "probe",
      plan: c.plan,
      sampling: { temperature: 0, topP: 1, topK: 0 },
      maxTokens: 4,
      eosIds: [EOS],
    };
    const hidden = { dtype: "float32", shape: [1, 1, 4] };
    const body = new Uint8Array(new Float32Array([7, 3, 0, 0]).buffer);
    await transport.send("b", "END", { requestId: "late-1" });
    await transport.send("b", "TENSOR", { ...route, ...hidden }, body);
    // A TENSOR for a live request goes through the same path and does create state: the probe sees its TOKEN.
    const tokens: number[] = [];
    transport.handle("TOKEN", (msg) => void tokens.push(msg.fields.token as number));
    await transport.send("b", "TENSOR", { ...route, requestId: "live-1", ...hidden }, body);
    await waitFor(() => tokens.length === 1, { what: "the TOKEN of the live request" });
    const live = await c.services.get("b")!.liveRequests();
    expect(live).toEqual({ queued: 0, coordinating: 0, stages: 1, engine: 1 });
    await transport.send("b", "END", { requestId: "live-1" });
    await waitAllFree(c);
  });

  test("cancelling during a long prefill frees the engine state without waiting for the step to finish", async () => {
    let stepStarted!: () => void;
    const started = new Promise<void>((r) => (stepStarted = r));
    const wrap = (_id: string, e: ShardEngine): ShardEngine => ({
      ...e,
      step(rid, input, sampling) {
        stepStarted();
        return e.step(rid, input, sampling);
      },
    });
    const c = cluster({ a: 6 }, { engine: { stepDelayMs: 10_000 }, wrapEngine: wrap });
    const ac = new AbortController();
    const run = caught(collect(c.services.get("a")!.generate(request(), ac.signal)));
    await started;
    expect((await c.services.get("a")!.liveRequests()).engine).toBe(1);
    ac.abort();
    expect(errorCode(await run)).toBe("E_CANCELLED");
    await waitAllFree(c, ["a"], 3000);
  });

  test("a stage at its live-request limit refuses the extra request with E_CAPACITY while the others finish", async () => {
    const c = cluster({ a: 3, b: 3 }, { engine: { maxLiveRequests: 2, stepDelayMs: 2 } });
    const results = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        collect(c.services.get("a")!.generate(request({ prompt: `p${i}` }), new AbortController().signal)),
      ),
    );
    const codes = results.map((r) => (r.status === "rejected" ? errorCode(r.reason) : "ok")).sort();
    expect(codes).toEqual(["E_CAPACITY", "ok", "ok"]);
    await waitAllFree(c);
  });

  test("admission: beyond the coordinator's limit requests wait in FIFO order; only one past the queue is refused", async () => {
    const c = cluster({ a: 3, b: 3 }, { engine: { stepDelayMs: 2 }, admission: { limit: 1, queueSize: 2 } });
    const a = c.services.get("a")!;
    const finished: number[] = [];
    const runs = [0, 1, 2, 3].map((i) =>
      collect(a.generate(request({ prompt: `p${i}` }), new AbortController().signal)).then(
        () => finished.push(i),
        (e: unknown) => errorCode(e),
      ),
    );
    expect(await runs[3]).toBe("E_CAPACITY");
    await Promise.all(runs);
    // Admitted one at a time, in arrival order.
    expect(finished).toEqual([0, 1, 2]);
    expect(a.admission()).toMatchObject({ running: 0, queued: 0, peakQueued: 2, refused: 1 });
    await waitAllFree(c);
  });
});
