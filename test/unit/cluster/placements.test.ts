// Placements and unloading on an in-memory cluster: what a node reports after preparing a model (each stage's
// layers and STATUS, requests in flight), and UNLOAD freeing the shard on every node.
import { afterEach, describe, expect, test } from "bun:test";
import { errorCode } from "../../../src/errors.ts";
import { collect, createMemoryCluster, request, type MemoryCluster } from "../../helpers/memory-cluster.ts";

let clusters: MemoryCluster[] = [];
afterEach(() => {
  clusters.forEach((c) => c.close());
  clusters = [];
});
const cluster = (...args: Parameters<typeof createMemoryCluster>) => {
  const c = createMemoryCluster(...args);
  clusters.push(c);
  return c;
};

describe("placements", () => {
  test("nothing is placed before a request; after it, the plan with every stage ready", async () => {
    const c = cluster({ a: 2, b: 1, c: 3 });
    const a = c.services.get("a")!;
    expect(a.placements()).toEqual([]);
    await collect(a.generate(request({ prompt: "hi" }), new AbortController().signal));
    const [p] = a.placements();
    expect(p).toMatchObject({ modelId: "fake-6", nLayers: 6, requestsInFlight: 0 });
    expect(p!.stages.map((s) => [s.nodeId, s.layerStart, s.layerEnd, s.phase, s.fraction])).toEqual([
      ["a", 0, 2, "ready", 1],
      ["b", 2, 3, "ready", 1],
      ["c", 3, 6, "ready", 1],
    ]);
  });

  test("a request in flight is counted on its model", async () => {
    const c = cluster({ a: 3, b: 3 });
    const a = c.services.get("a")!;
    const events = a
      .generate(request({ prompt: "hi", maxTokens: 50 }), new AbortController().signal)
      [Symbol.asyncIterator]();
    await events.next();
    expect(a.placements()[0]!.requestsInFlight).toBe(1);
    while (!(await events.next()).done);
    expect(a.placements()[0]!.requestsInFlight).toBe(0);
  });

  test("unload frees the shard on every node that holds it and forgets the placement", async () => {
    const c = cluster({ a: 2, b: 1, c: 3 });
    const a = c.services.get("a")!;
    await a.prepare("fake-6");
    expect(await a.unload("fake-6")).toEqual({ modelId: "fake-6", nodes: ["a", "b", "c"] });
    for (const id of ["a", "b", "c"]) expect(c.engines.get(id)!.loaded()).toBeUndefined();
    expect(a.placements()).toEqual([]);
    // Nothing left to unload; the next request prepares it again.
    expect((await a.unload("fake-6")).nodes).toEqual([]);
    const again = await collect(a.generate(request({ prompt: "hi" }), new AbortController().signal));
    expect(again.text.length).toBeGreaterThan(0);
    expect(c.engines.get("b")!.loaded()?.modelId).toBe("fake-6");
  });

  test("unloading an unknown model is E_MODEL_UNKNOWN", async () => {
    const c = cluster({ a: 6 });
    const err = await c.services
      .get("a")!
      .unload("nope")
      .catch((e: unknown) => e);
    expect(errorCode(err)).toBe("E_MODEL_UNKNOWN");
  });
});
