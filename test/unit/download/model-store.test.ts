// The node's model store: stage files for the cluster, exo's /modelpool, /download, progress and delete shapes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCatalog } from "../../../src/catalog/catalog.ts";
import { errorCode } from "../../../src/errors.ts";
import { createModelStore, type NodeModelStore } from "../../../src/download/model-store.ts";
import type { DownloadProgress } from "../../../src/download/progress.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, SINGLE_DIMS, shardedRepo, singleFileRepo } from "../../helpers/hub-fixtures.ts";

const SHARDED = "test-org/tiny-sharded";
const SINGLE = "test-org/tiny-single";
const FP8 = "other-org/fp8-original";
const entry = (id: string, repo: string, layers: number) => ({
  id,
  name: id,
  repo,
  layers,
  arch: "llama",
  quantization: "fp32",
  size_bytes: 1_000_000,
});
const catalog = parseCatalog({
  models: [
    entry("tiny-sharded", SHARDED, 6),
    entry("tiny-single", SINGLE, 4),
    entry("gated", "test-org/gated", 4),
    { ...entry("vision", "test-org/vision", 4), arch: "llava" },
    { id: "embedded", name: "E", embedded: true, layers: 2, arch: "llama", quantization: "fp32", size_bytes: 10 },
  ],
});

let hub: FakeHub;
let cacheDir: string;
let store: NodeModelStore;

/** Resolves with the first event of `store` that matches. */
function nextEvent(match: (p: DownloadProgress) => boolean): Promise<DownloadProgress> {
  return new Promise((resolve) => {
    const off = store.onProgress((p) => {
      if (!match(p)) return;
      off();
      resolve(p);
    });
  });
}

/** A repo whose config.json is an original FP8 checkpoint's (DeepSeek-V3 as deepseek-ai ships it). */
function fp8Repo() {
  const repo = singleFileRepo(FP8, SINGLE_DIMS);
  const config = repo.files.find((f) => f.path === "config.json")!;
  const parsed = JSON.parse(new TextDecoder().decode(config.bytes));
  parsed.quantization_config = { quant_method: "fp8", fmt: "e4m3", weight_block_size: [128, 128] };
  config.bytes = new TextEncoder().encode(JSON.stringify(parsed));
  return repo;
}

beforeAll(async () => {
  hub = await startFakeHub([
    shardedRepo(SHARDED, SHARDED_DIMS, SHARDED_FILES),
    singleFileRepo(SINGLE, SINGLE_DIMS),
    singleFileRepo("test-org/gated", SINGLE_DIMS),
    singleFileRepo("other-org/uncatalogued", { ...SINGLE_DIMS, layers: 3 }),
    fp8Repo(),
  ]);
  cacheDir = await mkdtemp(join(tmpdir(), "exo-store-"));
  store = createModelStore({
    nodeId: "node-a",
    catalog,
    hub: { endpoint: hub.url },
    hubCacheDir: cacheDir,
    offline: false,
    policy: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 },
  });
});
afterAll(async () => {
  await hub.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

describe("the model store", () => {
  test("fetches a stage's files for the cluster and reports them in progress as exo does", async () => {
    const seen: Array<Record<string, unknown>> = [];
    const dir = await store.ensureShardFiles("tiny-sharded", { layerStart: 1, layerEnd: 3 }, () =>
      seen.push(store.downloadProgress() as Record<string, unknown>),
    );
    expect(await Bun.file(join(dir, "model-00002-of-00004.safetensors")).exists()).toBe(true);
    expect(await Bun.file(join(dir, "model-00001-of-00004.safetensors")).exists()).toBe(false);
    const during = seen.find((p) => p["node-a"]) as Record<string, { shard: unknown; status: string }>;
    expect(during["node-a"]).toMatchObject({
      shard: { model_id: "tiny-sharded", start_layer: 1, end_layer: 2, n_layers: 6 },
      status: "in_progress",
    });
    expect(store.downloadProgress()).toEqual({});
  });

  test("an empty range (the coordinator's tokenizer) fetches config, tokenizer and chat template, no weights", async () => {
    const fresh = await mkdtemp(join(tmpdir(), "exo-store-support-"));
    try {
      const own = createModelStore({
        nodeId: "coordinator",
        catalog,
        hub: { endpoint: hub.url },
        hubCacheDir: fresh,
        offline: false,
      });
      const before = hub.cdnRequests.length;
      const dir = await own.ensureShardFiles("tiny-sharded", { layerStart: 0, layerEnd: 0 });
      const files = (await readdir(dir)).sort();
      expect(files).toEqual([
        "config.json",
        "generation_config.json",
        "model.safetensors.index.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
      ]);
      expect(hub.cdnRequests.slice(before).filter((r) => r.path.endsWith(".safetensors"))).toEqual([]);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  test("the pool shows a partly fetched model with its percentage, and a missing one at 0", async () => {
    const pool = (await store.modelPool()) as Record<
      string,
      { downloaded: boolean; download_percentage: number; total_size: number; total_downloaded: number }
    >;
    expect(pool["tiny-sharded"]?.downloaded).toBe(false);
    expect(pool["tiny-sharded"]?.download_percentage).toBeGreaterThan(0);
    expect(pool["tiny-sharded"]?.download_percentage).toBeLessThan(100);
    expect(pool["tiny-single"]).toEqual({
      downloaded: false,
      download_percentage: 0,
      total_size: 1_000_000,
      total_downloaded: 0,
    });
    expect(pool.embedded).toMatchObject({ downloaded: true, download_percentage: 100 });
  });

  test("POST /download's startDownload fetches the whole model in the background", async () => {
    const done = nextEvent((p) => p.modelId === "tiny-single" && p.status === "complete");
    await store.startDownload("tiny-single");
    await done;
    const pool = (await store.modelPool()) as Record<
      string,
      { downloaded: boolean; download_percentage: number; total_size: number }
    >;
    expect(pool["tiny-single"]).toMatchObject({
      downloaded: true,
      download_percentage: 100,
      total_size: hub.file(SINGLE, "model.safetensors").size,
    });
  });

  test("a failed background download is reported and leaves the store working", async () => {
    hub.faults.deny = { repo: "test-org/gated", status: 401 };
    try {
      const failed = nextEvent((p) => p.modelId === "gated" && p.status === "failed");
      await store.startDownload("gated");
      const event = await failed;
      expect(event.error).toContain("HF_TOKEN");
      expect(store.downloadProgress()).toEqual({});
    } finally {
      hub.faults.deny = undefined;
    }
    expect(await store.ensureShardFiles("tiny-single", { layerStart: 0, layerEnd: 4 })).toContain(
      "models--test-org--tiny-single",
    );
  });

  test("POST /download's startDownload refuses, before anything starts, what cannot be fetched or run", async () => {
    const refused = async (id: string) => {
      try {
        await store.startDownload(id);
      } catch (err) {
        return `${errorCode(err)}: ${(err as Error).message}`;
      }
      return "started";
    };
    expect(await refused("llama-9000")).toStartWith('E_MODEL_UNKNOWN: unknown model "llama-9000"');
    expect(await refused("vision")).toStartWith('E_MODEL_UNSUPPORTED: vision is a "llava" model');
    expect(await refused("nobody/absent")).toStartWith("E_DOWNLOAD_NOT_FOUND:");
    expect(hub.cdnRequests.filter((r) => r.path.endsWith(".safetensors") && r.path.includes("vision"))).toEqual([]);
  });

  test("a repo outside the catalog gets its layer count from its config.json", async () => {
    const m = await store.resolveModel("other-org/uncatalogued");
    expect(m).toMatchObject({
      id: "other-org/uncatalogued",
      layers: 3,
      arch: "llama",
      source: { kind: "hub", repo: "other-org/uncatalogued" },
    });
    // Resolved here, so the pool reports it beside the catalog (config fetched, no weights yet).
    const pool = (await store.modelPool()) as Record<string, { downloaded: boolean }>;
    expect(pool["other-org/uncatalogued"]).toMatchObject({ downloaded: false });
  });

  test("an original FP8 checkpoint is refused from its config.json, before any weight is downloaded", async () => {
    const err = await store.resolveModel(FP8).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("E_MODEL_UNSUPPORTED");
    expect((err as Error).message).toContain('quant_method "fp8" is not supported');
    // Weights are resolved through the hub (then redirected to the CDN): config.json was, the weights not.
    const resolved = hub.hubRequests.filter((p) => p.startsWith(`/${FP8}/resolve/`));
    expect(resolved.some((p) => p.endsWith("/config.json"))).toBe(true);
    expect(resolved.some((p) => p.endsWith(".safetensors"))).toBe(false);
  });

  test("a local directory the operator serves resolves once, with the bytes of its weight files, and is remembered by id", async () => {
    const local = join(cacheDir, "local-model");
    await mkdir(local, { recursive: true });
    await writeFile(join(local, "config.json"), JSON.stringify({ model_type: "qwen2", num_hidden_layers: 2 }));
    await writeFile(join(local, "a.safetensors"), new Uint8Array(1000));
    await writeFile(join(local, "b.safetensors"), new Uint8Array(24));
    await writeFile(join(local, "notes.txt"), new Uint8Array(5000));
    expect(store.resolved(local)).toBeUndefined();
    // A name from a client or a peer is never a path, until the operator serves that directory.
    await expect(store.resolveModel(local)).rejects.toMatchObject({ code: "E_MODEL_UNKNOWN" });
    const m = await store.resolveModel(local, { allowLocal: true });
    expect(m).toMatchObject({
      id: local,
      layers: 2,
      arch: "qwen2",
      sizeBytes: 1024,
      source: { kind: "local", dir: local },
    });
    await writeFile(join(local, "c.safetensors"), new Uint8Array(1));
    expect((await store.resolveModel(local)).sizeBytes).toBe(1024);
    expect(store.resolved(local)).toEqual(m);
    expect(store.resolvedModels().map((r): string => r.id)).toContain(local);
  });

  test("shows peers' running downloads next to its own", () => {
    store.recordPeerProgress("node-b", { status: "in_progress", repo_id: SHARDED });
    store.recordPeerProgress("node-c", { status: "complete", repo_id: SHARDED });
    expect(store.downloadProgress()).toEqual({ "node-b": { status: "in_progress", repo_id: SHARDED } });
  });

  test("DELETE /models removes a model's files; a second delete finds nothing; unknown ids are E_MODEL_UNKNOWN", async () => {
    expect(await store.deleteModel("tiny-single")).toEqual({ deleted: true });
    expect(await Bun.file(join(cacheDir, "models--test-org--tiny-single", "refs", "main")).exists()).toBe(false);
    expect(await store.deleteModel("tiny-single")).toEqual({ deleted: false });
    expect(await store.deleteModel("embedded")).toEqual({ deleted: false });
    expect(await store.deleteModel("nope").catch((e: unknown) => (e as { code: string }).code)).toBe("E_MODEL_UNKNOWN");
  });

  test("the embedded model needs no download", async () => {
    const dir = await store.ensureShardFiles("embedded", { layerStart: 0, layerEnd: 2 });
    expect(dir).toEndWith(join("configs", "default-model"));
  });
});
