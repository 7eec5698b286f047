// Terminal progress for downloads (cli-progress): one bar for the model and one per file in flight.
// Piped (no TTY) it prints a plain line per finished file instead, so logs stay readable.
import cliProgress from "cli-progress";
import { describeProgress, formatBytes, type DownloadProgress } from "../download/progress.ts";

export interface DownloadBars {
  update(p: DownloadProgress): void;
  stop(): void;
}

/** Bars on `stream` (stderr by default, keeping stdout for results). */
export function createDownloadBars(stream: NodeJS.WriteStream = process.stderr): DownloadBars {
  if (!stream.isTTY) return createPlainLines(stream);
  const multi = new cliProgress.MultiBar(
    {
      stream,
      hideCursor: true,
      clearOnComplete: false,
      fps: 8,
      barsize: 30,
      format: "{bar} {percentage}% | {label}",
      autopadding: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let total: cliProgress.SingleBar | undefined;
  const files = new Map<string, cliProgress.SingleBar>();
  return {
    update(p) {
      total ??= multi.create(Math.max(1, p.totalBytes), 0, { label: "" });
      total.setTotal(Math.max(1, p.totalBytes));
      total.update(p.downloadedBytes, { label: `${p.modelId}: ${describeProgress(p)}` });
      for (const f of p.files) {
        const bar = files.get(f.path);
        if (f.status === "in_progress" && !bar)
          files.set(f.path, multi.create(Math.max(1, f.totalBytes), f.downloadedBytes, { label: f.path }));
        const current = files.get(f.path);
        current?.update(f.downloadedBytes, {
          label: `${f.path} (${formatBytes(f.downloadedBytes)} / ${formatBytes(f.totalBytes)})`,
        });
        if (current && f.status === "complete") {
          multi.remove(current);
          files.delete(f.path);
        }
      }
    },
    stop: () => multi.stop(),
  };
}

function createPlainLines(stream: NodeJS.WriteStream): DownloadBars {
  const done = new Set<string>();
  return {
    update(p) {
      for (const f of p.files) {
        if (f.status !== "complete" || done.has(f.path)) continue;
        done.add(f.path);
        if (f.sessionBytes > 0)
          stream.write(`fetched ${f.path} (${formatBytes(f.totalBytes)}) — ${describeProgress(p)}\n`);
      }
    },
    stop() {},
  };
}
