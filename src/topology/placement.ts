// Placement (pure, DESIGN §6): ring order, memory-weighted half-open layer ranges, and a does-not-fit
// answer (needed vs available, per node) before anything is downloaded. Same input → same plan.
import { NodeError } from "../errors.ts";
import { asModelId, asNodeId, type ModelId, type NodeId } from "../ids.ts";
import type { LayerRange } from "./types.ts";

/** One stage of a plan: `nodeId` runs layers [layerStart, layerEnd). */
export interface Stage extends LayerRange {
  nodeId: NodeId;
}

/** Where each layer of a model runs; stages are in ring order and cover [0, nLayers) exactly once. */
export interface Plan {
  modelId: ModelId;
  nLayers: number;
  stages: Stage[];
}

/** A candidate node; `memory` is in MB, as in DeviceCapabilities. */
export interface PlacementNode {
  nodeId: NodeId;
  memory: number;
}

/** What a model needs: `weightBytes` is its in-memory size (all layers, embeddings and head). */
export interface ModelFootprint {
  modelId: ModelId;
  nLayers: number;
  weightBytes: number;
}

export interface PlacementOptions {
  /** Share of a node's memory the model may take; the OS and the node keep the rest. Default 0.8. */
  memoryFraction?: number;
  /** Bytes kept free per layer for KV caches and activations. Default: 1/8 of a layer's weights. */
  kvBytesPerLayer?: number;
}

/** A node's side of the fit check: usable bytes and how many layers they hold. */
export interface NodeFit {
  nodeId: NodeId;
  availableBytes: number;
  maxLayers: number;
}

export type Placement =
  | { ok: true; plan: Plan; leftOut: NodeFit[] }
  | {
      ok: false;
      neededBytes: number;
      availableBytes: number;
      bytesPerLayer: number;
      nodes: NodeFit[];
      message: string;
    };

const MB = 1024 * 1024;

const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Ring order: most memory first, then node id ascending (DESIGN §6). */
export function ringOrder<T extends PlacementNode>(nodes: Iterable<T>): T[] {
  return [...nodes].sort((a, b) => b.memory - a.memory || byId(a.nodeId, b.nodeId));
}

/**
 * Split `nLayers` into counts proportional to `weights` (integers), each within [1, caps[i]].
 * Largest remainder: floor shares first, then leftover layers to the largest fractional parts.
 * Requires weights.length <= nLayers <= sum(caps).
 */
export function splitLayers(nLayers: number, weights: number[], caps: number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  const counts = weights.map((w, i) => Math.min(caps[i] ?? 0, Math.max(1, Math.floor((nLayers * w) / total))));
  const remainder = weights.map((w) => (nLayers * w) % total);
  // Visit order for adding layers: largest remainder first; for taking back: smallest first. Ties keep ring order.
  const byRemainder = weights.map((_, i) => i).sort((a, b) => (remainder[b] ?? 0) - (remainder[a] ?? 0) || a - b);
  let left = nLayers - counts.reduce((s, c) => s + c, 0);
  while (left !== 0) {
    const before = left;
    for (const i of left > 0 ? byRemainder : [...byRemainder].reverse()) {
      const c = counts[i] ?? 0;
      const step = left > 0 ? (c < (caps[i] ?? 0) ? 1 : 0) : c > 1 ? -1 : 0;
      counts[i] = c + step;
      left -= step;
      if (left === 0) break;
    }
    if (left === before)
      throw new NodeError("E_INTERNAL", `cannot split ${nLayers} layers over ${weights.length} nodes`);
  }
  return counts;
}

function gb(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

/** Place a model on nodes: a plan, or a does-not-fit answer that says needed vs available per node. */
export function placeModel(
  model: ModelFootprint,
  nodes: Iterable<PlacementNode>,
  opts: PlacementOptions = {},
): Placement {
  const { modelId, nLayers } = model;
  if (!Number.isInteger(nLayers) || nLayers < 1)
    throw new NodeError("E_INTERNAL", `${modelId}: nLayers must be >= 1, got ${nLayers}`);
  const weightsPerLayer = Math.ceil(model.weightBytes / nLayers);
  const bytesPerLayer = Math.max(1, weightsPerLayer + (opts.kvBytesPerLayer ?? Math.ceil(weightsPerLayer / 8)));
  const fraction = opts.memoryFraction ?? 0.8;
  const ring = ringOrder(nodes);
  const ids = new Set(ring.map((n) => n.nodeId));
  if (ids.size !== ring.length) throw new NodeError("E_INTERNAL", `${modelId}: placement got the same node id twice`);
  const fits: NodeFit[] = ring.map((n) => {
    const availableBytes = Math.floor(Math.max(0, n.memory) * MB * fraction);
    return { nodeId: n.nodeId, availableBytes, maxLayers: Math.floor(availableBytes / bytesPerLayer) };
  });
  // Too small for one layer: left out. More nodes than layers: the smallest are left out.
  const usable = fits.filter((f) => f.maxLayers >= 1).slice(0, nLayers);
  const leftOut = fits.filter((f) => !usable.includes(f));
  const capacity = usable.reduce((s, f) => s + Math.min(f.maxLayers, nLayers), 0);
  const neededBytes = nLayers * bytesPerLayer;
  if (capacity < nLayers) {
    const availableBytes = fits.reduce((s, f) => s + f.availableBytes, 0);
    const perNode = fits.map(
      (f) =>
        `${f.nodeId} ${gb(f.availableBytes)} (${f.maxLayers >= 1 ? `${f.maxLayers} layer${f.maxLayers === 1 ? "" : "s"}` : "too small for one layer"})`,
    );
    const message =
      `${modelId} does not fit: it needs ${gb(neededBytes)} for ${nLayers} layers (${gb(bytesPerLayer)} per layer with KV headroom), ` +
      `the cluster has ${gb(availableBytes)} usable` +
      (perNode.length > 0 ? `: ${perNode.join(", ")}` : " (no nodes)");
    return { ok: false, neededBytes, availableBytes, bytesPerLayer, nodes: fits, message };
  }
  const memoryOf = new Map(ring.map((n) => [n.nodeId, Math.max(1, Math.floor(n.memory))]));
  const counts = splitLayers(
    nLayers,
    usable.map((f) => memoryOf.get(f.nodeId) ?? 1),
    usable.map((f) => f.maxLayers),
  );
  let layerStart = 0;
  const stages = usable.map((f, i) => {
    const stage = { nodeId: f.nodeId, layerStart, layerEnd: layerStart + (counts[i] ?? 0) };
    layerStart = stage.layerEnd;
    return stage;
  });
  return { ok: true, plan: { modelId, nLayers, stages }, leftOut };
}

/**
 * placeModel, for callers that want a plan or an error.
 * @throws NodeError E_MODEL_TOO_BIG with the needed vs available message
 */
export function planModel(model: ModelFootprint, nodes: Iterable<PlacementNode>, opts: PlacementOptions = {}): Plan {
  const placement = placeModel(model, nodes, opts);
  if (!placement.ok) throw new NodeError("E_MODEL_TOO_BIG", placement.message);
  return placement.plan;
}

/**
 * Validate a plan received from the wire: integer half-open ranges, in order, covering [0, nLayers) once.
 * @throws NodeError E_PROTOCOL_PAYLOAD naming what is wrong
 */
export function parsePlan(value: unknown): Plan {
  const bad = (why: string): never => {
    throw new NodeError("E_PROTOCOL_PAYLOAD", `plan: ${why}`);
  };
  if (typeof value !== "object" || value === null) return bad("expected an object");
  const { modelId, nLayers, stages } = value as Record<string, unknown>;
  if (typeof modelId !== "string" || modelId === "") bad("modelId: expected a non-empty string");
  if (!Number.isInteger(nLayers) || (nLayers as number) < 1) bad("nLayers: expected an integer >= 1");
  if (!Array.isArray(stages) || stages.length === 0) return bad("stages: expected a non-empty list");
  const out: Stage[] = [];
  let next = 0;
  const seen = new Set<string>();
  for (const [i, s] of stages.entries()) {
    const { nodeId, layerStart, layerEnd } = (s ?? {}) as Record<string, unknown>;
    if (typeof nodeId !== "string" || nodeId === "" || seen.has(nodeId))
      bad(`stages[${i}].nodeId: expected a distinct node id`);
    if (layerStart !== next) bad(`stages[${i}].layerStart: expected ${next}, got ${String(layerStart)}`);
    if (!Number.isInteger(layerEnd) || (layerEnd as number) <= next)
      bad(`stages[${i}].layerEnd: expected an integer > ${next}`);
    seen.add(nodeId as string);
    out.push({ nodeId: asNodeId(nodeId as string), layerStart: next, layerEnd: layerEnd as number });
    next = layerEnd as number;
  }
  if (next !== nLayers) bad(`stages end at layer ${next}, expected nLayers ${String(nLayers)}`);
  return { modelId: asModelId(modelId as string), nLayers: nLayers as number, stages: out };
}
