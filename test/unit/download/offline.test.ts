// Files downloaded once are found again without the hub: HF_HUB_OFFLINE, or a hub that cannot be reached.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cachedModelState, downloadRepo, type DownloadOptions } from "../../../src/download/download.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, shardedRepo } from "../../helpers/hub-fixtures.ts";

const REPO = "test-org/tiny-sharded";
let hub: FakeHub;
let cacheDir: string;
let onlineDir: string;
const opts = (extra: Partial<DownloadOptions> = {}): DownloadOptions => ({
  hub: { endpoint: hub.url },
  hubCacheDir: cacheDir,
  offline: false,
  policy: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 },
  ...extra,
});

beforeAll(async () => {
  hub = await startFakeHub([shardedRepo(REPO, SHARDED_DIMS, SHARDED_FILES)]);
  cacheDir = await mkdtemp(join(tmpdir(), "exo-offline-"));
  onlineDir = (await downloadRepo({ modelId: "m", repo: REPO, range: { layerStart: 0, layerEnd: 3 } }, opts())).dir;
});
afterAll(async () => {
  await hub.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

describe("offline use of the cache", () => {
  test("HF_HUB_OFFLINE serves a cached stage without one request to the hub", async () => {
    const before = hub.hubRequests.length;
    const res = await downloadRepo(
      { modelId: "m", repo: REPO, range: { layerStart: 1, layerEnd: 3 } },
      opts({ offline: true }),
    );
    expect(hub.hubRequests.length).toBe(before);
    expect(res).toMatchObject({ dir: onlineDir, offline: true, nLayers: 6 });
    expect(res.files).toEqual(["model-00002-of-00004.safetensors"]);
  });

  test("an unreachable hub falls back to the cache", async () => {
    const closed = Bun.serve({ port: 0, fetch: () => new Response() });
    const deadEndpoint = `http://127.0.0.1:${closed.port}`;
    closed.stop(true);
    const res = await downloadRepo(
      { modelId: "m", repo: REPO, range: { layerStart: 0, layerEnd: 3 } },
      opts({ hub: { endpoint: deadEndpoint } }),
    );
    expect(res).toMatchObject({ dir: onlineDir, offline: true });
  });

  test("offline, a stage whose files were never fetched fails naming the missing files", async () => {
    const err = await downloadRepo(
      { modelId: "m", repo: REPO, range: { layerStart: 3, layerEnd: 6 } },
      opts({ offline: true }),
    ).then(
      () => ({ code: "", message: "no failure" }),
      (e: unknown) => e as Error & { code: string },
    );
    expect(err.code).toBe("E_DOWNLOAD_OFFLINE");
    expect(err.message).toContain("model-00003-of-00004.safetensors, model-00004-of-00004.safetensors");
  });

  test("offline, a repo never fetched says it is not cached", async () => {
    const err = await downloadRepo({ modelId: "m", repo: "test-org/other" }, opts({ offline: true })).then(
      () => ({ code: "", message: "no failure" }),
      (e: unknown) => e as Error & { code: string },
    );
    expect(err.code).toBe("E_DOWNLOAD_OFFLINE");
    expect(err.message).toContain("test-org/other is not cached");
  });

  test("the cached state lists the weight files the model still lacks", async () => {
    const state = await cachedModelState(cacheDir, REPO);
    expect(state?.missing).toEqual(["model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors"]);
    expect(state?.presentBytes).toBe(
      hub.file(REPO, "model-00001-of-00004.safetensors").size + hub.file(REPO, "model-00002-of-00004.safetensors").size,
    );
    expect(await cachedModelState(cacheDir, "test-org/other")).toBeUndefined();
  });
});
