// Download progress: per file and per model (bytes done/total, speed, ETA), emitted at a bounded rate,
// and converted to exo's RepoProgressEvent shape for /v1/download/progress and STATUS broadcasts.
import type { LayerRange } from "../topology/types.ts";

export type DownloadStatus = "not_started" | "in_progress" | "complete" | "failed";

export interface FileProgress {
  path: string;
  downloadedBytes: number;
  totalBytes: number;
  /** Bytes fetched by this process (resumed bytes are not counted). */
  sessionBytes: number;
  speedBytesPerSec: number;
  etaSec: number;
  status: DownloadStatus;
  /** Bytes of this file fetched by this process, by where they came from: "hub" or a peer's node id. */
  sources: Record<string, number>;
}

/** One download of a model's layer range [layerStart, layerEnd) (all layers for a whole model). */
export interface DownloadProgress extends LayerRange {
  modelId: string;
  repo: string;
  revision: string;
  nLayers: number;
  files: FileProgress[];
  completedFiles: number;
  totalFiles: number;
  downloadedBytes: number;
  sessionBytes: number;
  totalBytes: number;
  speedBytesPerSec: number;
  etaSec: number;
  status: DownloadStatus;
  /** Bytes fetched by this process over all files, by where they came from: "hub" or a peer's node id. */
  sources?: Record<string, number>;
  error?: string;
}

export type ProgressListener = (progress: DownloadProgress) => void;

export interface ProgressTracker {
  /** A file now holds `bytes` (on disk or in hand). */
  update(path: string, bytes: number): void;
  complete(path: string): void;
  /** `bytes` more of the file came from `source` ("hub" or a peer's node id). */
  source(path: string, source: string, bytes: number): void;
  fail(error: string): void;
  finish(): void;
  snapshot(): DownloadProgress;
}

interface FileState {
  path: string;
  total: number;
  startBytes: number;
  bytes: number;
  status: DownloadStatus;
  startedAt: number;
  sources: Record<string, number>;
}

/** Tracks one model download; `listener` gets a snapshot at most every `intervalMs`, and always on status changes. */
export function createProgressTracker(
  base: Pick<DownloadProgress, "modelId" | "repo" | "revision" | "layerStart" | "layerEnd" | "nLayers">,
  files: Array<{ path: string; size: number; cached: boolean }>,
  listener: ProgressListener,
  intervalMs = 200,
  now: () => number = performance.now.bind(performance),
): ProgressTracker {
  const startedAt = now();
  const state = new Map<string, FileState>();
  for (const f of files) {
    state.set(f.path, {
      path: f.path,
      total: f.size,
      startBytes: -1,
      bytes: f.cached ? f.size : 0,
      status: f.cached ? "complete" : "not_started",
      startedAt,
      sources: {},
    });
  }
  let status: DownloadStatus = files.every((f) => f.cached) ? "complete" : "not_started";
  let error: string | undefined;
  let lastEmit = -Infinity;

  const snapshot = (): DownloadProgress => {
    const t = now();
    const list: FileProgress[] = [...state.values()].map((f) => fileProgress(f, t));
    const downloadedBytes = list.reduce((n, f) => n + f.downloadedBytes, 0);
    const totalBytes = list.reduce((n, f) => n + f.totalBytes, 0);
    const sessionBytes = list.reduce((n, f) => n + f.sessionBytes, 0);
    const elapsed = (t - startedAt) / 1000;
    const speed = elapsed > 0 ? sessionBytes / elapsed : 0;
    const sources: Record<string, number> = {};
    for (const f of list) for (const [k, v] of Object.entries(f.sources)) sources[k] = (sources[k] ?? 0) + v;
    return {
      ...base,
      files: list,
      completedFiles: list.filter((f) => f.status === "complete").length,
      totalFiles: list.length,
      downloadedBytes,
      sessionBytes,
      totalBytes,
      speedBytesPerSec: speed,
      etaSec: speed > 0 ? (totalBytes - downloadedBytes) / speed : 0,
      status,
      sources,
      ...(error ? { error } : {}),
    };
  };
  const emit = (force: boolean) => {
    const t = now();
    if (!force && t - lastEmit < intervalMs) return;
    lastEmit = t;
    listener(snapshot());
  };
  return {
    update(path, bytes) {
      const f = state.get(path);
      if (!f) return;
      if (f.startBytes < 0) {
        // The first report is what was already on disk: it does not count as this session's transfer.
        f.startBytes = bytes;
        f.startedAt = now();
      }
      f.bytes = bytes;
      const changed = f.status === "not_started" || status === "not_started";
      f.status = "in_progress";
      status = "in_progress";
      emit(changed);
    },
    complete(path) {
      const f = state.get(path);
      if (!f) return;
      f.bytes = f.total;
      f.status = "complete";
      emit(true);
    },
    source(path, source, bytes) {
      const f = state.get(path);
      if (f && bytes > 0) f.sources[source] = (f.sources[source] ?? 0) + bytes;
    },
    fail(message) {
      status = "failed";
      error = message;
      emit(true);
    },
    finish() {
      status = "complete";
      emit(true);
    },
    snapshot,
  };
}

/** exo's RepoProgressEvent.to_dict(): snake_case, inclusive end_layer, ETAs in seconds. */
export function toExoProgress(p: DownloadProgress): Record<string, unknown> {
  const fileProgress: Record<string, unknown> = {};
  for (const f of p.files) {
    fileProgress[f.path] = {
      repo_id: p.repo,
      repo_revision: p.revision,
      file_path: f.path,
      downloaded: f.downloadedBytes,
      downloaded_this_session: f.sessionBytes,
      total: f.totalBytes,
      speed: f.speedBytesPerSec,
      eta: f.etaSec,
      status: f.status,
      sources: f.sources,
    };
  }
  return {
    shard: { model_id: p.modelId, start_layer: p.layerStart, end_layer: p.layerEnd - 1, n_layers: p.nLayers },
    repo_id: p.repo,
    repo_revision: p.revision,
    completed_files: p.completedFiles,
    total_files: p.totalFiles,
    downloaded_bytes: p.downloadedBytes,
    downloaded_bytes_this_session: p.sessionBytes,
    total_bytes: p.totalBytes,
    overall_speed: p.speedBytesPerSec,
    overall_eta: p.etaSec,
    file_progress: fileProgress,
    status: p.status,
    sources: p.sources ?? {},
    ...(p.error ? { error: p.error } : {}),
  };
}

/** One line for people: "12.0 MiB / 1.2 GiB, 3 of 9 files, 30.0 MiB/s, ETA 40 s". */
export function describeProgress(p: DownloadProgress): string {
  const speed = p.speedBytesPerSec > 0 ? `, ${formatBytes(p.speedBytesPerSec)}/s, ETA ${Math.ceil(p.etaSec)} s` : "";
  const from = Object.entries(p.sources ?? {})
    .filter(([, n]) => n > 0)
    .map(([source, n]) => `${source === "hub" ? "hub" : `peer ${source}`} ${formatBytes(n)}`);
  const sources = from.length > 0 ? ` (from ${from.join(", ")})` : "";
  return `${formatBytes(p.downloadedBytes)} / ${formatBytes(p.totalBytes)}, ${p.completedFiles} of ${p.totalFiles} files${speed}${sources}`;
}

/** 1536 → "1.5 KiB": sizes for people. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

// --- internal ---

function fileProgress(f: FileState, t: number): FileProgress {
  const session = f.startBytes < 0 ? 0 : Math.max(0, f.bytes - f.startBytes);
  const elapsed = (t - f.startedAt) / 1000;
  const speed = f.status === "in_progress" && elapsed > 0 ? session / elapsed : 0;
  return {
    path: f.path,
    downloadedBytes: f.bytes,
    totalBytes: f.total,
    sessionBytes: session,
    speedBytesPerSec: speed,
    etaSec: speed > 0 ? (f.total - f.bytes) / speed : 0,
    status: f.status,
    sources: { ...f.sources },
  };
}
