// Fetches the files a stage needs from one repo into the HF cache and returns its snapshot directory:
// resolve the commit, list its files, fetch configs + index, choose the weight files of the layers,
// check free space, fetch in parallel. Offline (or hub unreachable) it serves what the cache holds.
import { mkdir, statfs } from "node:fs/promises";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { fetchFile, type OpenWriter } from "./fetch-file.ts";
import { fileSize, repoCache, withBlobLock, type RepoCache } from "./hf-cache.ts";
import type { PeerFiles } from "./peer-files.ts";
import { fetchCommit, isUnreachable, listCommitFiles, resolveUrl, type HubOptions, type RepoFile } from "./hub.ts";
import { createProgressTracker, formatBytes, type ProgressListener } from "./progress.ts";
import { DEFAULT_RETRY, backoffMs, isTransient, type RetryPolicy } from "./retry.ts";
import { CONFIG_FILE, readConfigFile } from "../models/spec/config-file.ts";
import { modelShape } from "../models/spec/describe.ts";
import type { LayerRange } from "../topology/types.ts";
import { filesForStage, isSupportFile, weightFilesForStage } from "./select-files.ts";

const log = logger("download");

export interface DownloadOptions {
  hub: HubOptions;
  hubCacheDir: string;
  /** HF_HUB_OFFLINE: never call the hub. */
  offline: boolean;
  policy?: RetryPolicy;
  /** Files fetched at once (exo's default: 8). */
  maxParallel?: number;
  openWriter?: OpenWriter;
  /** Free bytes where the cache lives; injected in tests. */
  freeBytes?: (dir: string) => Promise<number>;
  signal?: AbortSignal;
  /** The cluster's peers: asked for each file before the hub, and the source when the hub cannot be used. */
  peers?: PeerFiles;
}

export interface RepoRequest {
  modelId: string;
  repo: string;
  revision?: string;
  /** Undefined = the whole model. */
  range?: LayerRange;
  /** Only configs and tokenizer (to learn a model's shape before placing it). */
  supportOnly?: boolean;
}

export interface DownloadResult {
  /** snapshots/<commit>: config, tokenizer and the stage's weight files. */
  dir: string;
  commit: string;
  nLayers: number;
  files: string[];
  /** True when served from the cache without asking the hub. */
  offline: boolean;
}

/**
 * Ensures the files of `req` are in the cache, verified.
 * @throws E_DOWNLOAD_AUTH, E_DOWNLOAD_NOT_FOUND, E_DOWNLOAD_DISK_FULL, E_DOWNLOAD_VERIFY, E_DOWNLOAD_OFFLINE, E_DOWNLOAD.
 */
export async function downloadRepo(
  req: RepoRequest,
  opts: DownloadOptions,
  onProgress: ProgressListener = () => {},
): Promise<DownloadResult> {
  const cache = repoCache(opts.hubCacheDir, req.repo);
  const revision = req.revision ?? "main";
  if (opts.offline) return fromCacheOrPeers(req, cache, revision, "HF_HUB_OFFLINE is set", opts, onProgress);
  let commit: string;
  try {
    commit = await withRetries(opts, () => fetchCommit(opts.hub, req.repo, revision));
  } catch (err) {
    if (!isUnreachable(err)) throw err;
    log.warn(`${(err as Error).message}; using the cache`);
    return fromCacheOrPeers(req, cache, revision, (err as Error).message, opts, onProgress);
  }
  const listing = await withRetries(opts, () => listCommitFiles(opts.hub, req.repo, commit));
  return fetchListed(req, opts, cache, revision, commit, listing, onProgress);
}

/** The stage's files of a known listing (from the hub, or from peers when `hubless` says why not the hub). */
async function fetchListed(
  req: RepoRequest,
  opts: DownloadOptions,
  cache: RepoCache,
  revision: string,
  commit: string,
  listing: RepoFile[],
  onProgress: ProgressListener,
  hubless?: string,
): Promise<DownloadResult> {
  const offline = hubless !== undefined;
  const byPath = new Map(listing.map((f) => [f.path, f]));
  await cache.writeRef(revision, commit);

  const support = listing.filter((f) => isSupportFile(f.path));
  await fetchAll(support, req, commit, cache, opts, () => {}, hubless);
  const { nLayers, tied } = await readModelShape(cache, commit, req.repo);
  if (req.supportOnly)
    return { dir: cache.snapshotDir(commit), commit, nLayers, files: support.map((f) => f.path), offline };
  const range = req.range ?? { layerStart: 0, layerEnd: nLayers };
  checkRange(range, nLayers, req.modelId);
  const weightMap = byPath.has(INDEX) ? await readWeightMap(cache, commit) : undefined;
  const selected = filesForStage([...byPath.keys()], weightMap, range, nLayers, tied);
  const missing = selected.filter((p) => !byPath.has(p));
  if (missing.length > 0)
    throw new NodeError(
      "E_DOWNLOAD_NOT_FOUND",
      `${req.repo}'s index names files the repo does not have: ${missing.join(", ")}`,
    );
  const wanted = selected.map((p) => byPath.get(p) as RepoFile);

  const state = await Promise.all(
    wanted.map(async (f) => ({ file: f, cached: (await cache.snapshotFileSize(commit, f.path)) === f.size })),
  );
  await checkFreeSpace(
    state.filter((s) => !s.cached).map((s) => s.file),
    cache,
    opts,
  );
  const tracker = createProgressTracker(
    {
      modelId: req.modelId,
      repo: req.repo,
      revision: commit,
      layerStart: range.layerStart,
      layerEnd: range.layerEnd,
      nLayers,
    },
    state.map((s) => ({ path: s.file.path, size: s.file.size, cached: s.cached })),
    onProgress,
  );
  try {
    await fetchAll(
      state.filter((s) => !s.cached).map((s) => s.file),
      req,
      commit,
      cache,
      opts,
      (path, bytes, done) => (done ? tracker.complete(path) : tracker.update(path, bytes)),
      hubless,
      (path, source, bytes) => tracker.source(path, source, bytes),
    );
  } catch (err) {
    tracker.fail((err as Error).message);
    throw err;
  }
  tracker.finish();
  return { dir: cache.snapshotDir(commit), commit, nLayers, files: selected, offline };
}

/** Weight files of the whole model that a cached snapshot lacks (empty when complete); undefined when nothing is cached. */
export async function cachedModelState(
  hubCacheDir: string,
  repo: string,
): Promise<{ dir: string; commit: string; missing: string[]; presentBytes: number } | undefined> {
  const cache = repoCache(hubCacheDir, repo);
  const commit = await cache.readRef("main");
  if (!commit || (await cache.snapshotFileSize(commit, CONFIG_FILE)) === undefined) return undefined;
  const weightMap = await readWeightMap(cache, commit).catch(() => undefined);
  const all = weightMap ? [...new Set(Object.values(weightMap))].sort() : ["model.safetensors"];
  let presentBytes = 0;
  const missing: string[] = [];
  for (const path of all) {
    const size = await cache.snapshotFileSize(commit, path);
    if (size === undefined) missing.push(path);
    else presentBytes += size;
  }
  return { dir: cache.snapshotDir(commit), commit, missing, presentBytes };
}

// --- internal ---

const INDEX = "model.safetensors.index.json";

/** Per blob path: the fetch in flight, so two stages of one process never write the same file. */
const inflight = new Map<string, Promise<void>>();

type FileReport = (path: string, bytes: number, done: boolean) => void;

async function fetchAll(
  files: RepoFile[],
  req: RepoRequest,
  commit: string,
  cache: RepoCache,
  opts: DownloadOptions,
  report: FileReport,
  hubless?: string,
  onSource?: (path: string, source: string, bytes: number) => void,
): Promise<void> {
  if (files.length === 0) return;
  await mkdir(`${cache.dir}/blobs`, { recursive: true });
  const abort = new AbortController();
  const outer = opts.signal;
  outer?.addEventListener("abort", () => abort.abort(), { once: true });
  const queue = [...files];
  const worker = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const file = f;
      const blobPath = cache.blobPath(file.etag);
      if ((await fileSize(blobPath)) !== file.size) {
        let job = inflight.get(blobPath);
        if (!job) {
          const fetchJob = {
            repo: req.repo,
            path: file.path,
            url: resolveUrl(opts.hub, req.repo, commit, file.path),
            size: file.size,
            etag: file.etag,
            incompletePath: cache.incompletePath(file.etag),
            blobPath,
          };
          const deps = {
            hub: opts.hub,
            policy: opts.policy ?? DEFAULT_RETRY,
            openWriter: opts.openWriter,
            signal: abort.signal,
            ...(opts.peers ? { peers: opts.peers } : {}),
            ...(hubless !== undefined ? { hubless } : {}),
            onBytes: (b: number) => report(file.path, b, false),
            onSource: (source: string, bytes: number) => onSource?.(file.path, source, bytes),
          };
          // Another process may have finished this blob while we waited for its lock.
          job = withBlobLock(blobPath, async () =>
            (await fileSize(blobPath)) === file.size ? undefined : fetchFile(fetchJob, deps),
          ).finally(() => inflight.delete(blobPath));
          inflight.set(blobPath, job);
        }
        await job;
      }
      await cache.link(commit, file.path, file.etag);
      report(file.path, file.size, true);
    }
  };
  const workers = Array.from({ length: Math.min(opts.maxParallel ?? 8, files.length) }, () =>
    worker().catch((err: unknown) => {
      abort.abort();
      throw err;
    }),
  );
  const results = await Promise.allSettled(workers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  // Report the failure that caused the others to stop, not a cancellation that followed it.
  const root = results
    .map((r) => (r.status === "rejected" ? (r.reason as NodeError) : undefined))
    .find((e) => e && e.code !== "E_CANCELLED");
  if (failed) throw root ?? failed.reason;
}

/** The cache when it holds the stage; else, with peers, the snapshot they hold (fetched from them only). */
async function fromCacheOrPeers(
  req: RepoRequest,
  cache: RepoCache,
  revision: string,
  why: string,
  opts: DownloadOptions,
  onProgress: ProgressListener,
): Promise<DownloadResult> {
  try {
    return await fromCache(req, cache, revision, why);
  } catch (err) {
    if ((err as NodeError).code !== "E_DOWNLOAD_OFFLINE" || !opts.peers) throw err;
    const listed = await opts.peers.listing(req.repo);
    if (!listed) throw err;
    log.info(`${why}: fetching ${req.repo}@${listed.commit.slice(0, 8)} from peers ${listed.from.join(", ")}`);
    await cache.writeRef(revision, listed.commit);
    return fetchListed(req, opts, cache, revision, listed.commit, listed.files, onProgress, why);
  }
}

async function fromCache(req: RepoRequest, cache: RepoCache, revision: string, why: string): Promise<DownloadResult> {
  const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : await cache.readRef(revision);
  const offlineError = (detail: string) =>
    new NodeError("E_DOWNLOAD_OFFLINE", `${why}, and ${req.repo} ${detail} in ${cache.dir}; pull it once while online`);
  if (!commit || (await cache.snapshotFileSize(commit, CONFIG_FILE)) === undefined) throw offlineError("is not cached");
  const { nLayers, tied } = await readModelShape(cache, commit, req.repo);
  if (req.supportOnly) return { dir: cache.snapshotDir(commit), commit, nLayers, files: [], offline: true };
  const range = req.range ?? { layerStart: 0, layerEnd: nLayers };
  checkRange(range, nLayers, req.modelId);
  const weightMap = await readWeightMap(cache, commit).catch(() => undefined);
  const weights = weightMap ? weightFilesForStage(weightMap, range, nLayers, tied) : ["model.safetensors"];
  const absent: string[] = [];
  for (const path of weights) if ((await cache.snapshotFileSize(commit, path)) === undefined) absent.push(path);
  if (absent.length > 0) throw offlineError(`lacks ${absent.join(", ")}`);
  log.info(`using cached ${req.repo}@${commit.slice(0, 8)} (${why})`);
  return { dir: cache.snapshotDir(commit), commit, nLayers, files: weights, offline: true };
}

async function readModelShape(
  cache: RepoCache,
  commit: string,
  repo: string,
): Promise<{ nLayers: number; tied: boolean }> {
  const dir = cache.snapshotDir(commit);
  const config = await readConfigFile(dir).catch((cause: unknown) => {
    throw new NodeError("E_WEIGHTS", `${repo} has no readable ${CONFIG_FILE} (${dir}/${CONFIG_FILE})`, { cause });
  });
  return modelShape(config, repo);
}

async function readWeightMap(cache: RepoCache, commit: string): Promise<Record<string, string>> {
  const index = (await Bun.file(`${cache.snapshotDir(commit)}/${INDEX}`).json()) as {
    weight_map?: Record<string, string>;
  };
  if (!index.weight_map) throw new NodeError("E_WEIGHTS", `${INDEX} has no weight_map`);
  return index.weight_map;
}

function checkRange(range: LayerRange, nLayers: number, modelId: string): void {
  if (range.layerStart < 0 || range.layerEnd > nLayers || range.layerStart >= range.layerEnd) {
    throw new NodeError(
      "E_WEIGHTS",
      `layers [${range.layerStart}, ${range.layerEnd}) are not a stage of ${modelId}, which has ${nLayers} layers`,
    );
  }
}

async function checkFreeSpace(files: RepoFile[], cache: RepoCache, opts: DownloadOptions): Promise<void> {
  let needed = 0;
  for (const f of files) needed += f.size - Math.min(f.size, await fileSize(cache.incompletePath(f.etag)));
  if (needed === 0) return;
  await mkdir(cache.dir, { recursive: true });
  const free = await (opts.freeBytes ?? statfsFree)(cache.dir);
  if (free < needed) {
    throw new NodeError(
      "E_DOWNLOAD_DISK_FULL",
      `not enough disk space in ${cache.dir}: ${formatBytes(needed)} needed for ${files.length} file(s), only ${formatBytes(free)} free; free some space or choose another --models-dir`,
    );
  }
}

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

async function withRetries<T>(opts: DownloadOptions, fn: () => Promise<T>): Promise<T> {
  const policy = opts.policy ?? DEFAULT_RETRY;
  for (let failure = 1; ; failure++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || failure >= policy.attempts) throw err;
      await Bun.sleep(backoffMs(policy, failure));
    }
  }
}
