// The node's models on disk: resolve a model (filling in the shape of repos outside the catalog, and keeping
// every model resolved so far), fetch a stage's files (ensureShardFiles, used by the cluster during PREPARE), and exo's /modelpool, /download,
// /v1/download/progress and DELETE /models shapes for the API (ModelStore, types.ts).
import { findModel, isRepoId, loadCatalog, type Catalog, type CatalogEntry } from "../catalog/catalog.ts";
import { resolveModelRef, type ResolvedModel } from "../catalog/resolve.ts";
import { loadHfEnv } from "../config/hf-env.ts";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { readConfigFile } from "../models/spec/config-file.ts";
import { describeConfig } from "../models/spec/describe.ts";
import { assertRunnable, isSupportedModelType } from "../models/spec/architectures.ts";
import { assertLoadableQuantization } from "../models/spec/quantization.ts";
import { cachedModelState, downloadRepo, type DownloadOptions } from "./download.ts";
import { repoCache } from "./hf-cache.ts";
import { peerFilesOver, servePeerFiles } from "./peer-files.ts";
import { createPeerGrants, type PeerGrants } from "./peer-grants.ts";
import type { PeerTransport } from "../net/transport.ts";
import { toExoProgress, type DownloadProgress, type ProgressListener } from "./progress.ts";
import type { LayerRange } from "../topology/types.ts";
import type { ModelStore } from "./types.ts";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const log = logger("download");

export interface ModelStoreOptions extends Omit<DownloadOptions, "signal"> {
  nodeId: string;
  catalog?: Catalog;
}

/** A model's files on this node. */
export interface LocalModelState {
  id: string;
  name: string;
  layers?: number;
  downloaded: boolean;
  downloadedBytes: number;
  /** Exact when the model is complete; otherwise the catalog's estimate (or what is on disk, if larger). */
  totalBytes: number;
  percentage: number;
  /** Snapshot or local directory, when anything is on disk. */
  dir?: string;
}

/** A model whose layer count is known. */
export type ShapedModel = ResolvedModel & { layers: number };

export interface NodeModelStore extends ModelStore {
  /**
   * Resolves a reference, once per model id: a hub repo outside the catalog gets its layer count from its config,
   * a local directory its weight bytes from its files. A local directory only with `allowLocal` (the operator's
   * own --models DIR / `exo run DIR`, never a peer's or a client's name); later, the same name or the model's id
   * finds it again. @throws E_MODEL_UNKNOWN, E_DOWNLOAD_*
   */
  resolveModel(ref: string, opts?: { allowLocal?: boolean }): Promise<ShapedModel>;
  /** A model resolveModel has resolved, by id; undefined before. */
  resolved(modelId: string): ShapedModel | undefined;
  /** Every model resolved so far (the catalog's and the others: --models, `exo run DIR`, a peer's PREPARE). */
  resolvedModels(): ShapedModel[];
  /**
   * The directory holding config, tokenizer and the weight files of `range`, downloading what is missing;
   * an empty range (layerStart = layerEnd) fetches config, tokenizer and chat template only.
   * @throws E_MODEL_UNKNOWN, E_DOWNLOAD_*
   */
  ensureShardFiles(model: string | ResolvedModel, range: LayerRange, onProgress?: ProgressListener): Promise<string>;
  localState(entry: CatalogEntry): Promise<LocalModelState>;
  /** Every progress event of this node's downloads (the cluster broadcasts them as STATUS). */
  onProgress(listener: ProgressListener): () => void;
  /** A peer's progress (exo's RepoProgressEvent dict) so /v1/download/progress shows the whole cluster. */
  recordPeerProgress(nodeId: string, progress: Record<string, unknown>): void;
  /**
   * A peer's STATUS for `modelId`: while its phase is "download" it may read that model's repo from this
   * node's cache (grants). Synchronous, so a grant is in place before the peer's next frame is handled.
   */
  notePeerStatus(nodeId: string, modelId: string, downloading: boolean): void;
  /**
   * POST /download with a watch: `watch.progress` gets every progress event of the background download and
   * `watch.ended` its end (the error when it failed), so the node can tell its peers (STATUS) as a prepare does.
   */
  startDownload(modelId: string, watch?: DownloadWatch): Promise<void>;
  /** Which peer may read which repo from this node (servePeerFiles). */
  readonly grants: PeerGrants;
}

/** What a background download started by POST /download reports (see NodeModelStore.startDownload). */
export interface DownloadWatch {
  progress: ProgressListener;
  ended(error?: Error): void;
}

/** A store over an explicit cache and hub (tests, or callers that have read the environment). */
export function createModelStore(opts: ModelStoreOptions): NodeModelStore {
  const catalog = opts.catalog ?? loadCatalog();
  const listeners = new Set<ProgressListener>();
  const latest = new Map<string, DownloadProgress>();
  const peers = new Map<string, Record<string, unknown>>();
  const resolved = new Map<string, ShapedModel>();
  const grants = createPeerGrants();
  /** The hub repo of a model id, without I/O: resolved here, in the catalog, or a repo id itself. */
  const repoOf = (modelId: string): string | undefined => {
    const source = resolved.get(modelId)?.source;
    if (source) return source.kind === "hub" ? source.repo : undefined;
    const entry = findModel(catalog, modelId);
    if (entry) return entry.repo;
    return isRepoId(modelId) ? modelId : undefined;
  };

  const record = (p: DownloadProgress) => {
    latest.set(`${p.modelId}:${p.layerStart}:${p.layerEnd}`, p);
    for (const l of listeners) l(p);
  };

  /** Resolved hub repos the catalog lacks, as catalog-shaped rows (their size is known once downloaded). */
  const uncataloguedEntries = (): CatalogEntry[] =>
    [...resolved.values()].flatMap((m) =>
      m.source.kind === "hub" && !catalog.byId.has(m.id)
        ? [
            {
              id: m.id,
              name: m.name,
              repo: m.source.repo,
              layers: m.layers,
              arch: m.arch ?? "unknown",
              quantization: m.quantization,
              sizeBytes: 0,
              embedded: false,
              runnable: m.arch !== undefined && isSupportedModelType(m.arch),
            },
          ]
        : [],
    );

  /** How the operator wrote a model it serves (e.g. a relative directory) → the model's id. */
  const servedAs = new Map<string, string>();

  const resolveModel = async (ref: string, o: { allowLocal?: boolean } = {}): Promise<ShapedModel> => {
    const known = resolved.get(ref) ?? resolved.get(servedAs.get(ref) ?? "");
    if (known) return known;
    const model = withLocalSize(await shapeModel(ref, o));
    resolved.set(model.id, model);
    if (o.allowLocal) servedAs.set(ref, model.id);
    return model;
  };

  const shapeModel = async (ref: string, o: { allowLocal?: boolean }): Promise<ShapedModel> => {
    const model = await resolveModelRef(ref, catalog, o);
    if (model.layers !== undefined) return model as ShapedModel;
    if (model.source.kind !== "hub") throw new NodeError("E_WEIGHTS", `${ref}: config.json has no num_hidden_layers`);
    const res = await downloadRepo({ modelId: model.id, repo: model.source.repo, supportOnly: true }, opts);
    const config = await readConfigFile(res.dir);
    assertLoadableQuantization(config);
    return { ...model, ...describeConfig(config), layers: res.nLayers };
  };

  const ensureShardFiles = async (
    ref: string | ResolvedModel,
    range: LayerRange,
    onProgress?: ProgressListener,
  ): Promise<string> => {
    const model = typeof ref === "string" ? await resolveModelRef(ref, catalog) : ref;
    if (model.source.kind === "local") return model.source.dir;
    const report = (p: DownloadProgress) => {
      record(p);
      onProgress?.(p);
    };
    // An empty range is the coordinator asking for the tokenizer and chat template only (no weights).
    const supportOnly = range.layerStart === range.layerEnd;
    const req = { modelId: model.id, repo: model.source.repo, ...(supportOnly ? { supportOnly } : { range }) };
    try {
      return (await downloadRepo(req, opts, report)).dir;
    } catch (err) {
      // Failures before the file list is known have no tracker: report them in the same shape.
      const last = latest.get(`${model.id}:${range.layerStart}:${range.layerEnd}`);
      if (last?.status !== "failed")
        report(failedProgress(model, model.source.repo, range, (err as Error).message, last));
      throw err;
    }
  };

  const localState = async (entry: CatalogEntry): Promise<LocalModelState> => {
    const base = { id: entry.id, name: entry.name, layers: entry.layers };
    if (!entry.repo)
      return {
        ...base,
        downloaded: true,
        downloadedBytes: entry.sizeBytes,
        totalBytes: entry.sizeBytes,
        percentage: 100,
      };
    const cached = await cachedModelState(opts.hubCacheDir, entry.repo);
    if (!cached) return { ...base, downloaded: false, downloadedBytes: 0, totalBytes: entry.sizeBytes, percentage: 0 };
    const complete = cached.missing.length === 0;
    const total = complete ? cached.presentBytes : Math.max(entry.sizeBytes, cached.presentBytes);
    const percentage = total > 0 ? (100 * cached.presentBytes) / total : 0;
    return {
      ...base,
      downloaded: complete,
      downloadedBytes: cached.presentBytes,
      totalBytes: total,
      percentage,
      dir: cached.dir,
    };
  };

  return {
    resolveModel,
    resolved: (modelId) => resolved.get(modelId),
    resolvedModels: () => [...resolved.values()],
    ensureShardFiles,
    localState,
    onProgress(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    recordPeerProgress(nodeId, progress) {
      peers.set(nodeId, progress);
    },
    notePeerStatus(nodeId, modelId, downloading) {
      const repo = repoOf(modelId);
      if (repo) grants.preparing(nodeId, repo, downloading);
    },
    grants,

    async modelPool() {
      const pool: Record<string, unknown> = {};
      // The catalog, then the hub repos outside it that this node resolved (a request, --models, POST /download).
      for (const entry of [...catalog.entries, ...uncataloguedEntries()]) {
        const s = await localState(entry);
        pool[entry.id] = {
          downloaded: s.downloaded,
          download_percentage: s.percentage,
          total_size: s.totalBytes,
          total_downloaded: s.downloadedBytes,
        };
      }
      return pool;
    },

    downloadProgress() {
      // exo keeps one event per node and shows only downloads still running.
      const out: Record<string, unknown> = {};
      for (const [nodeId, p] of peers) if (p.status === "in_progress") out[nodeId] = p;
      const mine = [...latest.values()].filter((p) => p.status === "in_progress").at(-1);
      if (mine) out[opts.nodeId] = toExoProgress(mine);
      return out;
    },

    async startDownload(modelId, watch) {
      // Known, present on the hub (a repo outside the catalog has its config fetched) and runnable here, before
      // the answer; only then do the weights follow in the background.
      const model = await resolveModel(modelId);
      if (model.arch) assertRunnable(model.id, model.arch);
      if (model.source.kind === "local") return watch?.ended();
      void ensureShardFiles(model, { layerStart: 0, layerEnd: model.layers }, watch?.progress).then(
        () => watch?.ended(),
        (err: unknown) => {
          log.error(`download of ${modelId} failed: ${(err as Error).message}`);
          watch?.ended(err instanceof Error ? err : new Error(String(err)));
        },
      );
    },

    async deleteModel(modelId) {
      const model = await resolveModelRef(modelId, catalog);
      // Local directories (and the embedded model) belong to the user: never deleted from here.
      if (model.source.kind === "local") return { deleted: false };
      for (const key of latest.keys()) if (key.startsWith(`${model.id}:`)) latest.delete(key);
      return { deleted: await repoCache(opts.hubCacheDir, model.source.repo).remove() };
    },
  };
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

function failedProgress(
  model: ResolvedModel,
  repo: string,
  range: LayerRange,
  error: string,
  last?: DownloadProgress,
): DownloadProgress {
  const empty = {
    revision: "main",
    files: [],
    completedFiles: 0,
    totalFiles: 0,
    downloadedBytes: 0,
    sessionBytes: 0,
    totalBytes: 0,
  };
  return {
    ...empty,
    ...last,
    modelId: model.id,
    repo,
    ...range,
    nLayers: model.layers ?? range.layerEnd,
    speedBytesPerSec: 0,
    etaSec: 0,
    status: "failed",
    error,
  };
}

/** A store configured from the environment (HF_*), with `modelsDir` (--models-dir) overriding the hub cache. */
export async function createDefaultModelStore(opts: {
  nodeId: string;
  modelsDir?: string;
  /** The cluster's links: this node serves its cached blobs to peers and asks them before the hub. */
  transport?: PeerTransport;
}): Promise<NodeModelStore> {
  const env = await loadHfEnv();
  const hubCacheDir = opts.modelsDir ?? env.hubCacheDir;
  const store = createModelStore({
    ...(opts.transport ? { peers: peerFilesOver(opts.transport) } : {}),
    nodeId: opts.nodeId,
    hub: { endpoint: env.endpoint, ...(env.token ? { token: env.token } : {}) },
    hubCacheDir,
    offline: env.offline,
  });
  const transport = opts.transport;
  if (transport) {
    servePeerFiles(transport, hubCacheDir, store.grants);
    transport.onPeerChange((peer, up) => up || store.grants.peerDown(peer));
  }
  return store;
}
