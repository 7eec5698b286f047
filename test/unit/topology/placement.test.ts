// Placement: ring order, memory-weighted half-open ranges (property loops over random memories),
// nodes too small left out, does-not-fit answers, and plans received from the wire.
import { asModelId, asNodeId } from "../../../src/ids.ts";
import { describe, expect, test } from "bun:test";
import { isNodeError } from "../../../src/errors.ts";
import {
  parsePlan,
  placeModel,
  planModel,
  ringOrder,
  splitLayers,
  type ModelFootprint,
  type Plan,
  type PlacementNode,
} from "../../../src/topology/placement.ts";

const GB = 1024 ** 3;
/** A model small enough that memory never limits it: only proportions matter. */
const small = (nLayers: number): ModelFootprint => ({ modelId: asModelId("m"), nLayers, weightBytes: nLayers * 1024 });
const node = (nodeId: string, memory: number): PlacementNode => ({ nodeId: asNodeId(nodeId), memory });
const ranges = (plan: Plan) => plan.stages.map((s) => `${s.nodeId}:${s.layerStart}-${s.layerEnd}`);

/** mulberry32: a seeded PRNG so the property loops are reproducible. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

describe("ring order", () => {
  test("puts the most memory first and breaks ties by node id", () => {
    const order = ringOrder([node("b", 8), node("c", 16), node("a", 8), node("d", 4)]).map((n) => n.nodeId);
    expect<string[]>(order).toEqual(["c", "a", "b", "d"]);
  });
});

describe("placeModel, worked examples", () => {
  test("splits exo's 3000 / 1000 / 6000 MB example over 32 layers by largest remainder", () => {
    const plan = planModel(small(32), [node("node1", 3000), node("node2", 1000), node("node3", 6000)]);
    // Shares are 19.2, 9.6 and 3.2 layers; the spare layer goes to the largest fraction (node1's .6).
    expect(ranges(plan)).toEqual(["node3:0-19", "node1:19-29", "node2:29-32"]);
  });

  test("splits 128 / 192 / 128 GiB with ties in node id order", () => {
    const plan = planModel(small(32), [node("node1", 131072), node("node2", 196608), node("node3", 131072)]);
    expect(ranges(plan)).toEqual(["node2:0-14", "node1:14-23", "node3:23-32"]);
  });

  test("gives a single node every layer", () => {
    expect(ranges(planModel(small(16), [node("solo", 1000)]))).toEqual(["solo:0-16"]);
  });

  test("leaves out nodes beyond the layer count, smallest first", () => {
    const placement = placeModel(small(2), [node("a", 100), node("b", 300), node("c", 200)]);
    if (!placement.ok) throw new Error(placement.message);
    expect(ranges(placement.plan)).toEqual(["b:0-1", "c:1-2"]);
    expect<string[]>(placement.leftOut.map((f) => f.nodeId)).toEqual(["a"]);
  });
});

describe("placeModel, memory limits", () => {
  // 8 layers of 1 GiB (+1/8 KV headroom): 1.125 GiB per layer; a node may use 80% of its memory.
  const model: ModelFootprint = { modelId: asModelId("big"), nLayers: 8, weightBytes: 8 * GB };

  test("leaves out a node too small for one layer plus its KV headroom", () => {
    const placement = placeModel(model, [node("a", 16384), node("pi", 1024)]);
    if (!placement.ok) throw new Error(placement.message);
    expect(ranges(placement.plan)).toEqual(["a:0-8"]);
    expect<unknown>(placement.leftOut).toEqual([
      { nodeId: "pi", availableBytes: Math.floor(1024 * 1024 * 1024 * 0.8), maxLayers: 0 },
    ]);
  });

  test("places a memory-bound model when each node's share fits what it holds", () => {
    // a holds 7 layers (8 GiB * 0.8 / 1.125 GiB), b holds 2; the shares 6.4 / 1.6 become 6 / 2.
    const placement = placeModel(model, [node("a", 10240), node("b", 3200)]);
    if (!placement.ok) throw new Error(placement.message);
    expect(ranges(placement.plan)).toEqual(["a:0-6", "b:6-8"]);
  });

  test("answers does-not-fit before any download, with needed vs available per node", () => {
    const placement = placeModel(model, [node("mac2", 4096), node("test_mac1", 2048), node("pi", 512)]);
    expect(placement.ok).toBe(false);
    if (placement.ok) return;
    expect(placement.neededBytes).toBe(8 * (GB + GB / 8));
    expect<unknown>(placement.nodes.map((f) => [f.nodeId, f.maxLayers])).toEqual([
      ["mac2", 2],
      ["test_mac1", 1],
      ["pi", 0],
    ]);
    expect(placement.message).toBe(
      "big does not fit: it needs 9.0 GB for 8 layers (1.1 GB per layer with KV headroom), the cluster has 5.2 GB usable: " +
        "mac2 3.2 GB (2 layers), test_mac1 1.6 GB (1 layer), pi 0.4 GB (too small for one layer)",
    );
  });

  test("planModel throws E_MODEL_TOO_BIG with the same message", () => {
    try {
      planModel(model, []);
      throw new Error("planned");
    } catch (err) {
      expect(isNodeError(err) && err.code).toBe("E_MODEL_TOO_BIG");
      expect((err as Error).message).toContain("big does not fit: it needs 9.0 GB");
      expect((err as Error).message).toContain("(no nodes)");
    }
  });

  test("honours a custom memory fraction and KV headroom", () => {
    const opts = { memoryFraction: 1, kvBytesPerLayer: 0 };
    expect(placeModel(model, [node("a", 8192)], opts).ok).toBe(true);
    expect(placeModel(model, [node("a", 8191)], opts).ok).toBe(false);
  });
});

describe("placeModel, properties over random clusters", () => {
  const rand = rng(42);
  const cases = Array.from({ length: 300 }, (_, k) => {
    const nodeCount = 1 + Math.floor(rand() * 8);
    const nLayers = nodeCount + Math.floor(rand() * 120);
    const nodes = Array.from({ length: nodeCount }, (_, i) => node(`n${i}`, 256 + Math.floor(rand() * 200_000)));
    // Some cases are memory-bound (weights near the cluster's usable total), most are not.
    const total = nodes.reduce((s, n) => s + n.memory, 0) * 1024 * 1024;
    const weightBytes = k % 3 === 0 ? Math.floor(total * (0.3 + rand() * 0.4)) : nLayers * 4096;
    return { nodes, model: { modelId: asModelId(`m${k}`), nLayers, weightBytes } };
  });

  test("covers every layer exactly once, in ring order, with no empty range, within each node's capacity", () => {
    let planned = 0;
    for (const { nodes, model } of cases) {
      const placement = placeModel(model, nodes);
      if (!placement.ok) continue;
      planned++;
      const { stages } = placement.plan;
      expect(stages[0]?.layerStart).toBe(0);
      expect(stages.at(-1)?.layerEnd).toBe(model.nLayers);
      stages.forEach((s, i) => {
        expect(s.layerEnd).toBeGreaterThan(s.layerStart);
        if (i > 0) expect(s.layerStart).toBe(stages[i - 1]?.layerEnd ?? -1);
      });
      const order = ringOrder(nodes)
        .map((n) => n.nodeId)
        .filter((id) => stages.some((s) => s.nodeId === id));
      expect(stages.map((s) => s.nodeId)).toEqual(order);
      const perLayer = Math.ceil(model.weightBytes / model.nLayers);
      const bytesPerLayer = perLayer + Math.ceil(perLayer / 8);
      const memory = new Map(nodes.map((n) => [n.nodeId, n.memory]));
      for (const s of stages) {
        expect((s.layerEnd - s.layerStart) * bytesPerLayer).toBeLessThanOrEqual(
          (memory.get(s.nodeId) ?? 0) * 1024 * 1024 * 0.8,
        );
      }
      expect(parsePlan(placement.plan)).toEqual(placement.plan);
    }
    expect(planned).toBeGreaterThan(200);
  });

  test("weights layers by memory: within one layer of the exact share, and more memory never means fewer layers", () => {
    let checked = 0;
    for (const { nodes, model } of cases) {
      const total = nodes.reduce((s, n) => s + n.memory, 0);
      const smallest = Math.min(...nodes.map((n) => n.memory));
      if ((model.nLayers * smallest) / total < 1) continue; // a share under one layer is bumped up to one
      checked++;
      const plan = planModel(small(model.nLayers), nodes);
      const byNode = new Map(nodes.map((n) => [n.nodeId, n.memory]));
      let previous = Infinity;
      for (const s of plan.stages) {
        const count = s.layerEnd - s.layerStart;
        const share = (model.nLayers * (byNode.get(s.nodeId) ?? 0)) / total;
        expect(Math.abs(count - share)).toBeLessThan(1);
        expect(count).toBeLessThanOrEqual(previous);
        previous = count;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  test("gives the same plan for the same membership in any input order", () => {
    const shuffler = rng(7);
    for (const { nodes, model } of cases) {
      const a = placeModel(model, nodes);
      const b = placeModel(model, shuffle(nodes, shuffler));
      expect(b).toEqual(a);
    }
  });
});

describe("splitLayers", () => {
  test("takes layers back from the largest nodes when minimum-one bumps overshoot", () => {
    expect(splitLayers(4, [100, 1, 1, 1], [10, 10, 10, 10])).toEqual([1, 1, 1, 1]);
    expect(splitLayers(5, [100, 1, 1, 1], [10, 10, 10, 10])).toEqual([2, 1, 1, 1]);
  });

  test("never gives a node more than its cap", () => {
    expect(splitLayers(10, [90, 10], [3, 10])).toEqual([3, 7]);
  });
});

describe("parsePlan", () => {
  const good = {
    modelId: "m",
    nLayers: 4,
    stages: [
      { nodeId: "a", layerStart: 0, layerEnd: 3 },
      { nodeId: "b", layerStart: 3, layerEnd: 4 },
    ],
  };
  const bad: Array<[string, unknown, string]> = [
    [
      "a gap",
      {
        ...good,
        stages: [
          { nodeId: "a", layerStart: 0, layerEnd: 2 },
          { nodeId: "b", layerStart: 3, layerEnd: 4 },
        ],
      },
      "stages[1].layerStart: expected 2, got 3",
    ],
    ["an empty range", { ...good, stages: [{ nodeId: "a", layerStart: 0, layerEnd: 0 }] }, "stages[0].layerEnd"],
    ["a short cover", { ...good, nLayers: 5 }, "stages end at layer 4, expected nLayers 5"],
    [
      "a repeated node",
      {
        ...good,
        stages: [
          { nodeId: "a", layerStart: 0, layerEnd: 3 },
          { nodeId: "a", layerStart: 3, layerEnd: 4 },
        ],
      },
      "stages[1].nodeId",
    ],
    ["no stages", { ...good, stages: [] }, "stages: expected a non-empty list"],
    ["a missing model id", { ...good, modelId: 3 }, "modelId"],
  ];
  test("accepts a valid plan unchanged", () => {
    expect<unknown>(parsePlan(JSON.parse(JSON.stringify(good)))).toEqual(good);
  });
  for (const [what, value, fragment] of bad) {
    test(`rejects ${what} with E_PROTOCOL_PAYLOAD`, () => {
      expect(() => parsePlan(value)).toThrow(fragment);
      try {
        parsePlan(value);
      } catch (err) {
        expect(isNodeError(err) && err.code).toBe("E_PROTOCOL_PAYLOAD");
      }
    });
  }
});
