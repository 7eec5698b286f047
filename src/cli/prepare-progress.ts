// Visible progress while `exo run` places a model: one status line per node (download %, load %, ready),
// redrawn in place on a terminal, printed only on coarse changes when piped (logs stay readable).
import type { StatusFields } from "../cluster/messages.ts";

export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** The one-line summary of every node's phase, in node-id order. */
export function renderPrepareLine(modelId: string, statuses: Iterable<StatusFields>, step = 1): string {
  const parts = [...statuses]
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId))
    .map((s) => {
      if (s.phase === "ready") return `${s.nodeId} ready`;
      const percent = Math.floor((Math.min(1, Math.max(0, s.fraction)) * 100) / step) * step;
      if (s.phase !== "download") return `${s.nodeId} loading ${percent}%`;
      return `${s.nodeId} downloading ${percent}%${fromWhere(s.progress)}`;
    });
  return `preparing ${modelId}: ${parts.length > 0 ? parts.join(", ") : "planning"}`;
}

/** " from peer b, hub": where a node's download bytes came from so far (its progress's `sources`), or "". */
function fromWhere(progress: Record<string, unknown> | undefined): string {
  const sources = progress?.sources;
  if (!sources || typeof sources !== "object") return "";
  const names = Object.entries(sources as Record<string, unknown>)
    .filter(([, n]) => typeof n === "number" && n > 0)
    .map(([source]) => (source === "hub" ? "hub" : `peer ${source}`))
    .sort();
  return names.length > 0 ? ` from ${names.join(", ")}` : "";
}

/** A progress callback for ClusterService.prepare plus `finish()` to end the line. */
export function makePrepareProgress(modelId: string, sink: ProgressSink) {
  const latest = new Map<string, StatusFields>();
  let shown = "";
  const draw = () => {
    // Piped output gets a new line only every 10% so a long download does not flood a log file.
    const line = renderPrepareLine(modelId, latest.values(), sink.isTTY ? 1 : 10);
    if (line === shown) return;
    shown = line;
    sink.write(sink.isTTY ? `\r\x1b[K${line}` : `${line}\n`);
  };
  return {
    onProgress(status: StatusFields): void {
      if (status.modelId !== modelId) return;
      latest.set(status.nodeId, status);
      draw();
    },
    start(): void {
      draw();
    },
    finish(): void {
      if (sink.isTTY && shown) sink.write("\n");
    },
  };
}
