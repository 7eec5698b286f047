// The cluster service as a node runs it: the catalog resolves models, placement plans them over the
// nodes linked right now, the download store fetches shard files and the model's tokenizer drives text.
import { join } from "node:path";
import { asModelId } from "../ids.ts";
import type { ChatMessage, ModelInfo } from "./types.ts";
import { loadCatalog } from "../catalog/catalog.ts";
import { logger } from "../log.ts";
import { assertRunnable, isSupportedModelType } from "../models/spec/architectures.ts";
import { readConfigFileIfAny } from "../models/spec/config-file.ts";
import { contextWindow } from "../models/spec/context-window.ts";
import type { Quantization } from "../models/spec/quantization.ts";
import { cpuBytesPerStoredByte } from "../models/spec/footprint.ts";
import { kvBytesPerToken, kvHeadroomBytesPerLayer } from "../models/spec/kv-headroom.ts";
import { parseModelArgs } from "../models/spec/model-args.ts";
import type { NodeModelStore, ShapedModel } from "../download/model-store.ts";
import { toExoProgress, type DownloadProgress } from "../download/progress.ts";
import type { ShardEngine } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import { createDetokenizer } from "../tokenizer/detokenizer.ts";
import { loadTokenizer } from "../tokenizer/tokenizer.ts";
import { planModel, type PlacementNode } from "../topology/placement.ts";
import type { AdmissionOptions } from "./admission-queue.ts";
import { createClusterService, type ClusterService, type ClusterTokenizer, type ModelResolver } from "./service.ts";

const log = logger("cluster");

export interface NodeClusterOptions {
  transport: PeerTransport;
  engine: ShardEngine;
  /** Memory (MB) of a node as the topology knows it; undefined when unknown. */
  memoryOf(nodeId: string): number | undefined;
  /** True for Apple Silicon nodes, whose MLX keeps the checkpoint's dtypes; others run float32 (CPU). */
  runsOnMetal?(nodeId: string): boolean;
  /** Resolves models (catalog, hub, local dirs; each once), and fetches a stage's files into the cache. */
  store: Pick<
    NodeModelStore,
    "resolveModel" | "resolved" | "resolvedModels" | "ensureShardFiles" | "recordPeerProgress" | "notePeerStatus"
  >;
  /** Models to serve besides the catalog (local directories, Hugging Face repo ids). */
  models?: string[];
  tokenTimeoutMs?: number;
  /** A stage with no prepare progress for this long fails the prepare (default 60 s). */
  prepareStallMs?: number;
  failover?: { maxFailovers?: number; recoveryMs?: number };
  drainMs?: number;
  /** Admission of the requests this node coordinates (--max-live, --queue-size). */
  admission?: Partial<AdmissionOptions>;
}

/** The cluster service of a node; resolves `models` (served besides the catalog) before it returns. */
export async function createNodeClusterService(opts: NodeClusterOptions): Promise<ClusterService> {
  const { transport, store } = opts;
  const service = createClusterService({
    transport,
    engine: opts.engine,
    models: storeResolver(opts),
    onStatus: (status) => {
      if (status.nodeId === transport.selfId) return;
      // A peer downloading a model may read that model's files from this node (download/peer-grants.ts).
      // Until it reports all bytes (fraction 1) or moves on to loading.
      store.notePeerStatus(status.nodeId, status.modelId, status.phase === "download" && status.fraction < 1);
      if (status.progress) store.recordPeerProgress(status.nodeId, status.progress);
    },
    loadTokenizer: async (dir) =>
      adaptTokenizer(await loadTokenizer(dir), await readContextWindow(dir), await readKvBytesPerToken(dir)),
    tokenTimeoutMs: opts.tokenTimeoutMs,
    memoryOf: opts.memoryOf,
    prepareStallMs: opts.prepareStallMs,
    ...(opts.failover ? { failover: opts.failover } : {}),
    ...(opts.drainMs === undefined ? {} : { drainMs: opts.drainMs }),
    ...(opts.admission ? { admission: opts.admission } : {}),
  });
  for (const ref of opts.models ?? []) {
    await store
      .resolveModel(ref, { allowLocal: true }) // the operator's choice: a local directory may be served
      .catch((err: unknown) => log.error(`--models ${ref}: ${err instanceof Error ? err.message : String(err)}`));
  }
  return service;
}

/** The cluster's view of models over the store: the catalog and the store's resolved models, placement, files. */
function storeResolver(opts: NodeClusterOptions): ModelResolver {
  const { transport, store } = opts;

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

  return {
    // The catalog's runnable models, then models resolved here (--models, `exo run DIR`, a PREPARE from a peer,
    // POST /download) that it lacks; a model of an architecture this build cannot run is never listed.
    listModels() {
      const runnable = (arch: string | undefined) => arch === undefined || isSupportedModelType(arch);
      const catalog = loadCatalog()
        .entries.filter((e) => runnable(e.arch))
        .map((e) => ({
          id: asModelId(e.id),
          name: e.name,
          layers: e.layers,
          repo: e.repo ?? "embedded",
        }));
      const known = new Set<string>(loadCatalog().entries.map((m) => m.id));
      const extra = store
        .resolvedModels()
        .filter((m) => !known.has(m.id) && runnable(m.arch))
        .map((m) => infoOf(m));
      return [...catalog, ...extra];
    },
    resolveModel: async (modelId) => infoOf(await store.resolveModel(modelId)),
    planFor(model) {
      const resolved = store.resolved(model.id);
      if (resolved?.arch) assertRunnable(model.id, resolved.arch);
      // Unknown size (a hub repo outside the catalog): split by memory alone.
      const kvBytesPerLayer = kvHeadroomBytesPerLayer(resolved?.arch);
      return planModel(
        { modelId: model.id, nLayers: model.layers, weightBytes: resolved?.sizeBytes ?? 0 },
        nodes(resolved?.quantization ?? "fp32", resolved?.expertShare),
        kvBytesPerLayer === undefined ? {} : { kvBytesPerLayer },
      );
    },
    async ensureShardFiles(model, range, onProgress) {
      const full = await store.resolveModel(model.id);
      const report = (p: DownloadProgress) =>
        onProgress(
          p.totalBytes > 0 ? p.downloadedBytes / p.totalBytes : 0,
          `${p.completedFiles}/${p.totalFiles} files`,
          toExoProgress(p),
        );
      return store.ensureShardFiles(full, range, report);
    },
  };
}

function infoOf(model: ShapedModel): ModelInfo {
  return {
    id: model.id,
    name: model.name,
    layers: model.layers,
    repo: model.source.kind === "hub" ? model.source.repo : model.source.dir,
  };
}

/** The model's context window from the config and tokenizer config beside its tokenizer. */
async function readContextWindow(dir: string): Promise<number | undefined> {
  const tokenizerConfig = (await Bun.file(join(dir, "tokenizer_config.json"))
    .json()
    .catch(() => ({}))) as Record<string, unknown>;
  return contextWindow((await readConfigFileIfAny(dir)) ?? {}, tokenizerConfig);
}

/** KV bytes a token of the model beside its tokenizer; undefined (not counted) when its config does not parse. */
async function readKvBytesPerToken(dir: string): Promise<number | undefined> {
  const config = await readConfigFileIfAny(dir);
  try {
    return config ? kvBytesPerToken(parseModelArgs(config)) : undefined;
  } catch {
    return undefined;
  }
}

function adaptTokenizer(
  t: Awaited<ReturnType<typeof loadTokenizer>>,
  window: number | undefined,
  kvBytes: number | undefined,
): ClusterTokenizer {
  return {
    ...(window !== undefined ? { contextWindow: window } : {}),
    ...(kvBytes !== undefined ? { kvBytesPerToken: kvBytes } : {}),
    encodeChat: (messages: ChatMessage[], tools?: unknown[]) =>
      t.encodeChat(messages, { addGenerationPrompt: true, ...(tools ? { tools } : {}) }),
    encode: (text) => t.encode(text, { addSpecialTokens: true }),
    eosIds: [...t.eosIds],
    createDetokenizer: () => createDetokenizer(t),
  };
}
