// exo's model routes served by the API app (engineer G's) over this node's real model store and the fake hub:
// GET /modelpool, POST /download, GET /v1/download/progress, DELETE /models/{id}.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createApp, type App } from "../../../src/api/app.ts";
import { parseCatalog } from "../../../src/catalog/catalog.ts";
import { createModelStore, type NodeModelStore } from "../../../src/download/model-store.ts";
import type { DownloadProgress } from "../../../src/download/progress.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { fakeDeps } from "../../helpers/fake-inference.ts";
import { SINGLE_DIMS, singleFileRepo } from "../../helpers/hub-fixtures.ts";

const REPO = "test-org/tiny-single";
const catalog = parseCatalog({
  models: [
    { id: "tiny", name: "Tiny", repo: REPO, layers: 4, arch: "llama", quantization: "fp32", size_bytes: 4_000_000 },
  ],
});
let hub: FakeHub;
let cacheDir: string;
let store: NodeModelStore;
let app: App;
const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  app(
    new Request(`http://node${path}`, {
      method,
      headers: { "content-type": "application/json", ...headers },
      ...(body ? { body: JSON.stringify(body) } : {}),
    }),
  );

beforeAll(async () => {
  hub = await startFakeHub([singleFileRepo(REPO, SINGLE_DIMS)]);
  cacheDir = await mkdtemp(join(tmpdir(), "exo-routes-"));
  store = createModelStore({
    nodeId: "node-a",
    catalog,
    hub: { endpoint: hub.url },
    hubCacheDir: cacheDir,
    offline: false,
  });
  app = createApp(fakeDeps(undefined, { models: store }).deps);
});
afterAll(async () => {
  await hub.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

describe("exo's model routes over the real store", () => {
  test("GET /modelpool streams one SSE event per model, then [DONE]", async () => {
    const res = await call("GET", "/modelpool");
    const text = await res.text();
    expect(text).toBe(
      `data: ${JSON.stringify({ tiny: { downloaded: false, download_percentage: 0, total_size: 4_000_000, total_downloaded: 0 } })}\n\ndata: [DONE]\n\n`,
    );
  });

  test("POST /download starts the download; progress is visible while it runs; the pool then shows it complete", async () => {
    const progressDuring: unknown[] = [];
    const complete = new Promise<DownloadProgress>((resolve) => {
      const off = store.onProgress((p) => {
        if (p.status === "in_progress") progressDuring.push(store.downloadProgress());
        if (p.status === "complete") {
          off();
          resolve(p);
        }
      });
    });
    const res = await call("POST", "/download", { model: "tiny" });
    expect(await res.json()).toEqual({ status: "success", message: "Download started for model: tiny" });
    await complete;
    expect(progressDuring[0]).toMatchObject({
      "node-a": {
        repo_id: REPO,
        status: "in_progress",
        shard: { model_id: "tiny", start_layer: 0, end_layer: 3, n_layers: 4 },
      },
    });
    const pool = await (await call("GET", "/modelpool", undefined, { accept: "application/json" })).json();
    expect(pool).toEqual({
      tiny: {
        downloaded: true,
        download_percentage: 100,
        total_size: hub.file(REPO, "model.safetensors").size,
        total_downloaded: hub.file(REPO, "model.safetensors").size,
      },
    });
    expect(await (await call("GET", "/v1/download/progress")).json()).toEqual({});
  });

  test("POST /download of an unknown model is a 404 naming it", async () => {
    const res = await call("POST", "/download", { model: "nope" });
    expect(res.status).toBe(404);
    expect(JSON.stringify(await res.json())).toContain('unknown model \\"nope\\"');
  });

  test("DELETE /models/{id} removes the files, then answers 404", async () => {
    expect((await call("DELETE", "/models/tiny")).status).toBe(200);
    expect((await call("DELETE", "/models/tiny")).status).toBe(404);
  });
});
