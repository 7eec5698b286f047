// The cluster graph (pure): nodes with capabilities, directed links with a description (`MAN` for
// peer-file links), merging of collected views, exo's /topology JSON shape and `exo topology` text.
import { NodeError } from "../errors.ts";
import { UNKNOWN_CAPABILITIES, type DeviceCapabilities } from "./types.ts";

/** A directed link `fromId → toId`; `description` says how it was made (`MAN`: from the peer file). */
export interface TopologyLink {
  readonly fromId: string;
  readonly toId: string;
  readonly description: string;
}

/** A normalized graph: node ids sorted, links unique by (from, to) and sorted, so equal views compare equal. */
export interface Topology {
  readonly nodes: ReadonlyMap<string, DeviceCapabilities>;
  readonly links: readonly TopologyLink[];
  /** The node running a prompt right now (exo's active_node_id), or null. */
  readonly activeNodeId: string | null;
}

/** exo's GET /topology body. */
export interface TopologyJson {
  nodes: Record<string, DeviceCapabilities>;
  peer_graph: Record<string, Array<{ from_id: string; to_id: string; description: string }>>;
  active_node_id: string | null;
}

/** Description of a link made from the peer file (exo manual discovery). */
export const MANUAL_LINK = "MAN";

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function isUnknown(caps: DeviceCapabilities): boolean {
  return caps.memory === 0 && caps.chip === UNKNOWN_CAPABILITIES.chip && caps.model === UNKNOWN_CAPABILITIES.model;
}

/**
 * Build a normalized topology. A node listed twice keeps its first known capabilities; a link listed
 * twice keeps its first description. Links may name nodes that are not in `nodes`.
 */
export function buildTopology(parts: {
  nodes?: Iterable<readonly [string, DeviceCapabilities]>;
  links?: Iterable<TopologyLink>;
  activeNodeId?: string | null;
}): Topology {
  const nodes = new Map<string, DeviceCapabilities>();
  for (const [id, caps] of parts.nodes ?? []) {
    const seen = nodes.get(id);
    if (!seen || (isUnknown(seen) && !isUnknown(caps))) nodes.set(id, caps);
  }
  const links = new Map<string, TopologyLink>();
  for (const link of parts.links ?? []) {
    if (link.fromId === link.toId) continue;
    const key = `${link.fromId}\u0000${link.toId}`;
    if (!links.has(key)) links.set(key, { fromId: link.fromId, toId: link.toId, description: link.description });
  }
  const sortedLinks = [...links.values()].sort((a, b) => byId(a.fromId, b.fromId) || byId(a.toId, b.toId));
  const sortedNodes = new Map([...nodes].sort(([a], [b]) => byId(a, b)));
  return Object.freeze({
    nodes: sortedNodes,
    links: Object.freeze(sortedLinks),
    activeNodeId: parts.activeNodeId ?? null,
  });
}

/**
 * Union of several views (own view first). A node's capabilities come from the first view that knows
 * them, so a node's self-report (the view it sent) should come before hearsay about it.
 */
export function mergeTopologies(...views: Topology[]): Topology {
  return buildTopology({
    nodes: views.flatMap((v) => [...v.nodes]),
    links: views.flatMap((v) => v.links),
    activeNodeId: views.find((v) => v.activeNodeId !== null)?.activeNodeId ?? null,
  });
}

/** Node ids reachable from `fromId` along links (including itself), for "is the cluster connected". */
export function reachableFrom(topology: Topology, fromId: string): Set<string> {
  const seen = new Set([fromId]);
  const queue = [fromId];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    for (const link of topology.links) {
      if (link.fromId === id && !seen.has(link.toId)) {
        seen.add(link.toId);
        queue.push(link.toId);
      }
    }
  }
  return seen;
}

/** exo's /topology shape; every node gets a peer_graph entry (empty when it has no outgoing link). */
export function topologyToJson(topology: Topology): TopologyJson {
  const nodes: Record<string, DeviceCapabilities> = {};
  const peerGraph: TopologyJson["peer_graph"] = {};
  for (const [id, caps] of topology.nodes) {
    nodes[id] = { model: caps.model, chip: caps.chip, memory: caps.memory, flops: { ...caps.flops } };
    peerGraph[id] = [];
  }
  for (const link of topology.links) {
    peerGraph[link.fromId] ??= [];
    peerGraph[link.fromId]!.push({ from_id: link.fromId, to_id: link.toId, description: link.description });
  }
  return { nodes, peer_graph: peerGraph, active_node_id: topology.activeNodeId };
}

function fail(path: string, expected: string): never {
  throw new NodeError("E_PROTOCOL_PAYLOAD", `${path}: expected ${expected}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/**
 * Read capabilities received from a peer (HELLO, TOPOLOGY), in exo's shape.
 * @throws NodeError E_PROTOCOL_PAYLOAD naming the bad key path
 */
export function parseCapabilities(v: unknown, path = "capabilities"): DeviceCapabilities {
  if (!isRecord(v) || typeof v.model !== "string" || typeof v.chip !== "string")
    fail(path, "{model, chip, memory, flops}");
  if (!isNum(v.memory) || v.memory < 0) fail(`${path}.memory`, "a number >= 0");
  const f = v.flops;
  if (!isRecord(f) || !isNum(f.fp32) || !isNum(f.fp16) || !isNum(f.int8))
    fail(`${path}.flops`, "{fp32, fp16, int8} numbers");
  return { model: v.model, chip: v.chip, memory: v.memory, flops: { fp32: f.fp32, fp16: f.fp16, int8: f.int8 } };
}

/**
 * Read a topology in exo's JSON shape, as received from a peer (untrusted).
 * @throws NodeError E_PROTOCOL_PAYLOAD naming the bad key path
 */
export function parseTopologyJson(value: unknown): Topology {
  if (!isRecord(value) || !isRecord(value.nodes) || !isRecord(value.peer_graph))
    fail("topology", "{nodes, peer_graph}");
  const nodes = Object.entries(value.nodes).map(
    ([id, caps]) => [id, parseCapabilities(caps, `topology.nodes.${id}`)] as const,
  );
  const links: TopologyLink[] = [];
  for (const [id, list] of Object.entries(value.peer_graph)) {
    if (!Array.isArray(list)) fail(`topology.peer_graph.${id}`, "a list of links");
    list.forEach((l: unknown, i) => {
      const ok = isRecord(l) && typeof l.from_id === "string" && typeof l.to_id === "string";
      if (!ok) fail(`topology.peer_graph.${id}[${i}]`, "{from_id, to_id, description}");
      links.push({
        fromId: l.from_id as string,
        toId: l.to_id as string,
        description: typeof l.description === "string" ? l.description : "",
      });
    });
  }
  const active = value.active_node_id;
  return buildTopology({ nodes, links, activeNodeId: typeof active === "string" ? active : null });
}

function formatMemory(mb: number): string {
  return mb >= 1024 ? `${(mb / 1024).toFixed(mb % 1024 === 0 ? 0 : 1)} GB` : `${mb} MB`;
}

/** Text for `exo topology`: one line per node, then one `a --> b [DESC]` line per link. */
export function renderTopology(topology: Topology, selfId?: string): string {
  const width = Math.max(0, ...[...topology.nodes.keys()].map((id) => id.length));
  const lines = [`nodes (${topology.nodes.size}):`];
  for (const [id, caps] of topology.nodes) {
    const marks = [id === selfId ? "this node" : "", id === topology.activeNodeId ? "active" : ""].filter(Boolean);
    const flops = `${caps.flops.fp32.toFixed(2)} TFLOPS fp32`;
    const suffix = marks.length > 0 ? `  (${marks.join(", ")})` : "";
    lines.push(
      `  ${id.padEnd(width)}  ${caps.model} · ${caps.chip} · ${formatMemory(caps.memory)} · ${flops}${suffix}`,
    );
  }
  lines.push(`links (${topology.links.length}):`);
  for (const link of topology.links) lines.push(`  ${link.fromId} --> ${link.toId} [${link.description}]`);
  return lines.join("\n");
}
