// Progress events: totals, speed and ETA from a controlled clock, throttling, and exo's event shape.
import { describe, expect, test } from "bun:test";
import {
  createProgressTracker,
  formatBytes,
  toExoProgress,
  type DownloadProgress,
} from "../../../src/download/progress.ts";

const base = { modelId: "m", repo: "o/m", revision: "c".repeat(40), layerStart: 2, layerEnd: 4, nLayers: 8 };

describe("createProgressTracker", () => {
  test("counts resumed bytes as downloaded but not as this session's, and derives speed and ETA", () => {
    let t = 0;
    const events: DownloadProgress[] = [];
    const tracker = createProgressTracker(
      base,
      [
        { path: "a", size: 1000, cached: false },
        { path: "b", size: 500, cached: true },
      ],
      (p) => events.push(p),
      200,
      () => t,
    );
    tracker.update("a", 400);
    t = 1000;
    tracker.update("a", 600);
    const p = tracker.snapshot();
    expect(p).toMatchObject({
      downloadedBytes: 1100,
      totalBytes: 1500,
      sessionBytes: 200,
      completedFiles: 1,
      totalFiles: 2,
      status: "in_progress",
    });
    expect(p.speedBytesPerSec).toBe(200);
    expect(p.etaSec).toBe(2);
    expect(p.files[0]).toMatchObject({ path: "a", downloadedBytes: 600, sessionBytes: 200, status: "in_progress" });
  });

  test("emits at most once per interval, but always on status changes", () => {
    let t = 0;
    const events: DownloadProgress[] = [];
    const tracker = createProgressTracker(
      base,
      [{ path: "a", size: 100, cached: false }],
      (p) => events.push(p),
      200,
      () => t,
    );
    tracker.update("a", 1);
    for (let i = 2; i < 50; i++) tracker.update("a", i);
    expect(events.length).toBe(1);
    t = 250;
    tracker.update("a", 60);
    tracker.complete("a");
    tracker.finish();
    expect(events.map((e) => e.status)).toEqual(["in_progress", "in_progress", "in_progress", "complete"]);
    expect(events.at(-1)?.downloadedBytes).toBe(100);
  });
});

describe("toExoProgress", () => {
  test("matches exo's RepoProgressEvent dict: snake_case, inclusive end layer", () => {
    const tracker = createProgressTracker(base, [{ path: "a", size: 10, cached: true }], () => {});
    tracker.finish();
    const exo = toExoProgress(tracker.snapshot());
    expect(exo).toMatchObject({
      shard: { model_id: "m", start_layer: 2, end_layer: 3, n_layers: 8 },
      repo_id: "o/m",
      completed_files: 1,
      total_files: 1,
      downloaded_bytes: 10,
      downloaded_bytes_this_session: 0,
      total_bytes: 10,
      status: "complete",
      file_progress: { a: { file_path: "a", downloaded: 10, total: 10, status: "complete" } },
    });
  });

  test("formats sizes for people", () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(3 * 2 ** 30)]).toEqual(["512 B", "1.5 KiB", "3.0 GiB"]);
  });
});
