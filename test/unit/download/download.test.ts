// Downloading a stage from the fake hub: exactly the files that hold its layers, in HF's cache layout.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { lstat, mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo, type DownloadOptions } from "../../../src/download/download.ts";
import type { DownloadProgress } from "../../../src/download/progress.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, SINGLE_DIMS, shardedRepo, singleFileRepo } from "../../helpers/hub-fixtures.ts";

const SHARDED = "test-org/tiny-sharded";
const TIED = "test-org/tiny-tied";
const SINGLE = "test-org/tiny-single";
const CONFIGS = [
  "config.json",
  "generation_config.json",
  "special_tokens_map.json",
  "tokenizer.json",
  "tokenizer_config.json",
];
const shardFile = (k: number) => `model-0000${k}-of-00004.safetensors`;

let hub: FakeHub;
let cacheDir: string;
const opts = (): DownloadOptions => ({
  hub: { endpoint: hub.url },
  hubCacheDir: cacheDir,
  offline: false,
  policy: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 },
});

beforeAll(async () => {
  hub = await startFakeHub([
    shardedRepo(SHARDED, SHARDED_DIMS, SHARDED_FILES),
    shardedRepo(TIED, { ...SHARDED_DIMS, tied: true }, SHARDED_FILES),
    singleFileRepo(SINGLE, SINGLE_DIMS),
  ]);
});
afterAll(async () => {
  await hub.stop();
});

describe("downloadRepo", () => {
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), "exo-dl-"));
  });
  afterAll(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });

  const stages: Array<[string, number, number, number[]]> = [
    ["a middle stage", 2, 4, [2, 3]],
    ["the first stage", 0, 2, [1, 2]],
    ["the last stage", 5, 6, [4]],
    ["a stage inside one file", 3, 5, [3]],
  ];
  for (const [name, a, b, fileNums] of stages) {
    test(`${name} [${a}, ${b}) fetches exactly the weight files holding its layers, plus configs and tokenizer`, async () => {
      const before = new Set(hub.cdnRequests);
      const fresh = { ...opts(), hubCacheDir: join(cacheDir, `stage-${a}-${b}`) };
      const res = await downloadRepo(
        { modelId: "sharded", repo: SHARDED, range: { layerStart: a, layerEnd: b } },
        fresh,
      );
      const expected = [...CONFIGS, "model.safetensors.index.json", ...fileNums.map(shardFile)].sort();
      expect(res.files).toEqual(expected);
      const fetchedNow = [...new Set(hub.cdnRequests.filter((r) => !before.has(r)).map((r) => r.path))].sort();
      expect(fetchedNow).toEqual(fileNums.map(shardFile));
      for (const p of expected)
        expect((await Bun.file(join(res.dir, p)).arrayBuffer()).byteLength).toBe(hub.file(SHARDED, p).size);
    });
  }

  test("the last stage of a tied model also fetches the embeddings", async () => {
    const res = await downloadRepo({ modelId: "tied", repo: TIED, range: { layerStart: 5, layerEnd: 6 } }, opts());
    expect(res.files.filter((f) => f.endsWith(".safetensors"))).toEqual([shardFile(1), shardFile(4)]);
  });

  test("lays files out as Hugging Face does: blobs named by hash, snapshot symlinks, refs/main", async () => {
    const res = await downloadRepo({ modelId: "single", repo: SINGLE }, opts());
    const repoDir = join(cacheDir, "models--test-org--tiny-single");
    const commit = hub.commit(SINGLE);
    expect(res.dir).toBe(join(repoDir, "snapshots", commit));
    expect((await Bun.file(join(repoDir, "refs", "main")).text()).trim()).toBe(commit);
    const weights = hub.file(SINGLE, "model.safetensors");
    expect(await readlink(join(res.dir, "model.safetensors"))).toBe(`../../blobs/${weights.sha256}`);
    expect((await lstat(join(repoDir, "blobs", hub.file(SINGLE, "config.json").gitSha1))).isFile()).toBe(true);
    expect((await readdir(join(repoDir, "blobs"))).some((n) => n.endsWith(".incomplete"))).toBe(false);
    expect(res.files).not.toContain("README.md");
  });

  test("a second download of cached files fetches no bytes and reports the files complete", async () => {
    const count = hub.cdnRequests.length;
    const events: DownloadProgress[] = [];
    await downloadRepo({ modelId: "single", repo: SINGLE }, opts(), (p) => events.push(p));
    expect(hub.cdnRequests.length).toBe(count);
    expect(events.at(-1)).toMatchObject({
      status: "complete",
      sessionBytes: 0,
      completedFiles: events.at(-1)?.totalFiles,
    });
  });

  test("reports per-file and per-model progress ending complete with all bytes", async () => {
    const events: DownloadProgress[] = [];
    const res = await downloadRepo(
      { modelId: "sharded", repo: SHARDED },
      { ...opts(), hubCacheDir: join(cacheDir, "fresh") },
      (p) => events.push(p),
    );
    const last = events.at(-1) as DownloadProgress;
    const total = res.files.reduce((n, f) => n + hub.file(SHARDED, f).size, 0);
    expect(last).toMatchObject({
      status: "complete",
      totalBytes: total,
      downloadedBytes: total,
      totalFiles: res.files.length,
      layerStart: 0,
      layerEnd: 6,
      nLayers: 6,
    });
    expect(events.some((e) => e.status === "in_progress")).toBe(true);
    expect(last.files.every((f) => f.status === "complete" && f.downloadedBytes === f.totalBytes)).toBe(true);
  });
});
