// The cluster service as a node runs it: the catalog resolves models, placement plans them over the
// nodes linked right now, the download store fetches shard files and the model's tokenizer drives text.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ChatMessage, ModelInfo } from "../api/deps.ts";
import { loadCatalog } from "../catalog/catalog.ts";
import { logger } from "../log.ts";
import { assertRunnable } from "../models/spec/architectures.ts";
import { cpuBytesPerStoredByte } from "../models/spec/footprint.ts";
import { kvHeadroomBytesPerLayer } from "../models/spec/kv-headroom.ts";
import type { Quantization } from "../models/spec/quantization.ts";
import type { NodeModelStore, ShapedModel } from "../download/model-store.ts";
import { toExoProgress, type DownloadProgress } from "../download/progress.ts";
import type { ShardEngine } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import { createDetokenizer } from "../tokenizer/detokenizer.ts";
import { loadTokenizer } from "../tokenizer/tokenizer.ts";
import { planModel, type PlacementNode } from "../topology/placement.ts";
import { createClusterService, type ClusterService, type ClusterTokenizer } from "./service.ts";

const log = logger("cluster");

export interface NodeClusterOptions {
  transport: PeerTransport;
  engine: ShardEngine;
  /** Memory (MB) of a node as the topology knows it; undefined when unknown. */
  memoryOf(nodeId: string): number | undefined;
  /** True for Apple Silicon nodes, whose MLX keeps the checkpoint's dtypes; others run float32 (CPU). */
  runsOnMetal?(nodeId: string): boolean;
  /** Resolves models (catalog, hub, local dirs) and fetches a stage's files into the cache. */
  store: Pick<NodeModelStore, "resolveModel" | "ensureShardFiles" | "recordPeerProgress">;
  /** Models to serve besides the catalog (local directories, Hugging Face repo ids). */
  models?: string[];
  tokenTimeoutMs?: number;
}

/** The cluster service of a node; resolves `models` (served besides the catalog) before it returns. */
export async function createNodeClusterService(opts: NodeClusterOptions): Promise<ClusterService> {
  const { transport, store } = opts;
  const resolved = new Map<string, ShapedModel>();

  async function resolveModel(modelId: string): Promise<ModelInfo> {
    const model = resolved.get(modelId) ?? withLocalSize(await store.resolveModel(modelId));
    resolved.set(model.id, model);
    return infoOf(model);
  }

  // A CPU node upcasts every weight to float32 at load (a 4-bit checkpoint takes ~7x its file size there)
  // except 2/4/8-bit routed experts, which it keeps packed: placement sees such a node's memory shrunk by
  // that factor instead of the weights grown for every node.
  function nodes(quantization: Quantization, expertShare?: number): PlacementNode[] {
    const cpuExpansion = cpuBytesPerStoredByte(quantization, expertShare);
    return [transport.selfId, ...transport.peersUp()].map((nodeId) => {
      const memory = opts.memoryOf(nodeId) ?? 0;
      return { nodeId, memory: opts.runsOnMetal?.(nodeId) ? memory : Math.floor(memory / cpuExpansion) };
    });
  }

  // The catalog, then models resolved here (--models, `exo run DIR`, a PREPARE from a peer) that it lacks.
  function listModels(): ModelInfo[] {
    const catalog = loadCatalog().entries.map((e) => ({
      id: e.id,
      name: e.name,
      layers: e.layers,
      repo: e.repo ?? "embedded",
    }));
    const known = new Set(catalog.map((m) => m.id));
    const extra = [...resolved.values()].filter((m) => !known.has(m.id)).map((m) => infoOf(m));
    return [...catalog, ...extra];
  }

  const service = createClusterService({
    transport,
    engine: opts.engine,
    listModels,
    resolveModel,
    planFor: (model) => {
      const arch = resolved.get(model.id)?.arch;
      if (arch) assertRunnable(model.id, arch);
      // Unknown size (a hub repo outside the catalog): split by memory alone.
      const size = resolved.get(model.id)?.sizeBytes ?? 0;
      const kvBytesPerLayer = kvHeadroomBytesPerLayer(arch);
      return planModel(
        { modelId: model.id, nLayers: model.layers, weightBytes: size },
        nodes(resolved.get(model.id)?.quantization ?? "fp32", resolved.get(model.id)?.expertShare),
        kvBytesPerLayer === undefined ? {} : { kvBytesPerLayer },
      );
    },
    ensureShardFiles: async (model, range, onProgress) => {
      const full = resolved.get(model.id) ?? (await store.resolveModel(model.id));
      const report = (p: DownloadProgress) =>
        onProgress(
          p.totalBytes > 0 ? p.downloadedBytes / p.totalBytes : 0,
          `${p.completedFiles}/${p.totalFiles} files`,
          toExoProgress(p),
        );
      return store.ensureShardFiles(full, range, report);
    },
    onStatus: (status) => {
      if (status.progress && status.nodeId !== transport.selfId)
        store.recordPeerProgress(status.nodeId, status.progress);
    },
    loadTokenizer: async (dir) => adaptTokenizer(await loadTokenizer(dir)),
    tokenTimeoutMs: opts.tokenTimeoutMs,
  });
  for (const ref of opts.models ?? []) {
    await resolveModel(ref).catch((err: unknown) =>
      log.error(`--models ${ref}: ${err instanceof Error ? err.message : String(err)}`),
    );
  }
  return service;
}

/** A local directory's weight bytes, so placement can say "does not fit" for it too. */
function withLocalSize(model: ShapedModel): ShapedModel {
  if (model.sizeBytes !== undefined || model.source.kind !== "local") return model;
  const dir = model.source.dir;
  const sizeBytes = readdirSync(dir)
    .filter((f) => f.endsWith(".safetensors"))
    .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  return { ...model, sizeBytes };
}

function infoOf(model: ShapedModel): ModelInfo {
  return {
    id: model.id,
    name: model.name,
    layers: model.layers,
    repo: model.source.kind === "hub" ? model.source.repo : model.source.dir,
  };
}

function adaptTokenizer(t: Awaited<ReturnType<typeof loadTokenizer>>): ClusterTokenizer {
  return {
    encodeChat: (messages: ChatMessage[], tools?: unknown[]) =>
      t.encodeChat(messages, { addGenerationPrompt: true, ...(tools ? { tools } : {}) }),
    encode: (text) => t.encode(text, { addSpecialTokens: true }),
    eosIds: [...t.eosIds],
    createDetokenizer: () => createDetokenizer(t),
  };
}
