// Topology graph: normalization, merging views, exo's JSON shape (both ways) and the `exo topology` text.
import { describe, expect, test } from "bun:test";
import { isNodeError } from "../../../src/errors.ts";
import {
  MANUAL_LINK,
  buildTopology,
  mergeTopologies,
  parseCapabilities,
  parseTopologyJson,
  reachableFrom,
  renderTopology,
  topologyToJson,
  type TopologyLink,
} from "../../../src/topology/graph.ts";
import { UNKNOWN_CAPABILITIES, type DeviceCapabilities } from "../../../src/topology/types.ts";

const caps = (chip: string, memory: number, fp32 = 0): DeviceCapabilities => ({
  model: "Mac",
  chip,
  memory,
  flops: { fp32, fp16: fp32 * 2, int8: fp32 * 4 },
});
const man = (fromId: string, toId: string): TopologyLink => ({ fromId, toId, description: MANUAL_LINK });

const mac2 = caps("Apple M2 Ultra", 196608, 26.98);
const mac1 = caps("Apple M3 Max", 131072, 14.2);

/** What each node of the original report sees by itself: itself, its peer as configured, one link out. */
const viewOfMac2 = buildTopology({
  nodes: [
    ["mac2", mac2],
    ["test_mac1", UNKNOWN_CAPABILITIES],
  ],
  links: [man("mac2", "test_mac1")],
});
const viewOfMac1 = buildTopology({
  nodes: [
    ["test_mac1", mac1],
    ["mac2", UNKNOWN_CAPABILITIES],
  ],
  links: [man("test_mac1", "mac2")],
});

describe("buildTopology", () => {
  test("sorts nodes and links so the same content in any order gives the same graph", () => {
    const a = buildTopology({
      nodes: [
        ["b", mac1],
        ["a", mac2],
      ],
      links: [man("b", "a"), man("a", "b")],
    });
    const b = buildTopology({
      nodes: [
        ["a", mac2],
        ["b", mac1],
      ],
      links: [man("a", "b"), man("b", "a")],
    });
    expect(topologyToJson(a)).toEqual(topologyToJson(b));
    expect([...a.nodes.keys()]).toEqual(["a", "b"]);
    expect(a.links.map((l) => `${l.fromId}>${l.toId}`)).toEqual(["a>b", "b>a"]);
  });

  test("keeps one link per direction and drops self-links", () => {
    const t = buildTopology({
      links: [man("a", "b"), { fromId: "a", toId: "b", description: "OTHER" }, man("a", "a")],
    });
    expect(t.links).toEqual([man("a", "b")]);
  });
});

describe("mergeTopologies", () => {
  test("joins the two views of the original report into 2 nodes and 2 links, the same from either side", () => {
    const fromMac2 = mergeTopologies(viewOfMac2, viewOfMac1);
    const fromMac1 = mergeTopologies(viewOfMac1, viewOfMac2);
    expect(fromMac2.nodes.size).toBe(2);
    expect(fromMac2.links).toHaveLength(2);
    expect(topologyToJson(fromMac2)).toEqual(topologyToJson(fromMac1));
    // Known capabilities win over the placeholder a peer had before it heard from the node.
    expect(fromMac2.nodes.get("test_mac1")).toEqual(mac1);
    expect(fromMac1.nodes.get("mac2")).toEqual(mac2);
  });

  test("keeps nodes two hops away (exo's merge dropped them)", () => {
    const ab = buildTopology({ nodes: [["a", mac2]], links: [man("a", "b")] });
    const bc = buildTopology({
      nodes: [
        ["b", mac1],
        ["c", caps("Apple M1", 16384)],
      ],
      links: [man("b", "c")],
    });
    const merged = mergeTopologies(ab, bc);
    expect([...merged.nodes.keys()]).toEqual(["a", "b", "c"]);
    expect([...reachableFrom(merged, "a")].sort()).toEqual(["a", "b", "c"]);
    expect([...reachableFrom(merged, "c")]).toEqual(["c"]);
  });

  test("prefers the first view's known capabilities for a node", () => {
    const first = buildTopology({ nodes: [["a", mac2]] });
    const second = buildTopology({ nodes: [["a", mac1]] });
    expect(mergeTopologies(first, second).nodes.get("a")).toEqual(mac2);
  });

  test("carries the active node from any view", () => {
    const active = buildTopology({ nodes: [["a", mac2]], activeNodeId: "a" });
    expect(mergeTopologies(viewOfMac2, active).activeNodeId).toBe("a");
  });
});

describe("exo's /topology JSON", () => {
  test("has nodes, peer_graph with from_id/to_id/description, and active_node_id", () => {
    const json = topologyToJson(mergeTopologies(viewOfMac2, viewOfMac1));
    expect(json).toEqual({
      nodes: { mac2, test_mac1: mac1 },
      peer_graph: {
        mac2: [{ from_id: "mac2", to_id: "test_mac1", description: "MAN" }],
        test_mac1: [{ from_id: "test_mac1", to_id: "mac2", description: "MAN" }],
      },
      active_node_id: null,
    });
  });

  test("reads capabilities on their own, naming the bad key", () => {
    expect(parseCapabilities(JSON.parse(JSON.stringify(mac2)))).toEqual(mac2);
    expect(() => parseCapabilities({ ...mac2, memory: -1 }, "hello.capabilities")).toThrow(
      "hello.capabilities.memory: expected a number >= 0",
    );
  });

  test("round-trips through parseTopologyJson (JSON text included)", () => {
    const t = mergeTopologies(viewOfMac2, viewOfMac1);
    const back = parseTopologyJson(JSON.parse(JSON.stringify(topologyToJson(t))));
    expect(topologyToJson(back)).toEqual(topologyToJson(t));
  });

  const bad: Array<[string, unknown, string]> = [
    ["a list", [], "topology: expected {nodes, peer_graph}"],
    [
      "a node without memory",
      { nodes: { a: { model: "m", chip: "c", flops: { fp32: 0, fp16: 0, int8: 0 } } }, peer_graph: {} },
      "topology.nodes.a.memory",
    ],
    [
      "flops as strings",
      { nodes: { a: { ...mac2, flops: { fp32: "1", fp16: 0, int8: 0 } } }, peer_graph: {} },
      "nodes.a.flops",
    ],
    ["a link without to_id", { nodes: {}, peer_graph: { a: [{ from_id: "a" }] } }, "peer_graph.a[0]"],
    ["peer_graph entries that are not lists", { nodes: {}, peer_graph: { a: {} } }, "peer_graph.a"],
  ];
  for (const [what, value, path] of bad) {
    test(`rejects ${what} with E_PROTOCOL_PAYLOAD naming ${path}`, () => {
      try {
        parseTopologyJson(value);
        throw new Error("parsed");
      } catch (err) {
        expect(isNodeError(err) && err.code).toBe("E_PROTOCOL_PAYLOAD");
        expect((err as Error).message).toContain(path);
      }
    });
  }
});

describe("renderTopology", () => {
  test("prints nodes with capabilities and links as `from --> to [DESC]`", () => {
    const text = renderTopology(mergeTopologies(viewOfMac2, viewOfMac1), "mac2");
    expect(text.split("\n")).toEqual([
      "nodes (2):",
      "  mac2       Mac · Apple M2 Ultra · 192 GB · 26.98 TFLOPS fp32  (this node)",
      "  test_mac1  Mac · Apple M3 Max · 128 GB · 14.20 TFLOPS fp32",
      "links (2):",
      "  mac2 --> test_mac1 [MAN]",
      "  test_mac1 --> mac2 [MAN]",
    ]);
  });

  test("shows memory below 1 GB in MB and marks the active node", () => {
    const t = buildTopology({ nodes: [["pi", caps("BCM2835", 512)]], activeNodeId: "pi" });
    expect(renderTopology(t)).toContain("pi  Mac · BCM2835 · 512 MB · 0.00 TFLOPS fp32  (active)");
  });
});
