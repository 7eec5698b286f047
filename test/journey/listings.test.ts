// Honest listings and requests on a node with an empty cache and HF_ENDPOINT on the fake hub, through the openai
// client and plain HTTP: /v1/models lists only what this build runs, each with `downloaded` for this node; POST
// /download of an unknown, absent or unrunnable model is a 4xx naming why (never "Download started"), of a hub repo
// it starts and both listings follow it; a broken
// percent-encoding in DELETE /models/{id} is a 400. The node keeps serving after each refusal.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { startFakeHub, type FakeHub } from "../helpers/fake-hub.ts";
import { journeyRepo, makeJourneyCheckpoint } from "../helpers/journey-model.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const RAW_REPO = "exo-test/listed-llama-16";
const work = mkdtempSync(join(tmpdir(), "exo-listings-"));
let hub: FakeHub;
let node: SpawnedNode;
let base: string;

beforeAll(async () => {
  await makeJourneyCheckpoint(join(work, "unsplit"));
  hub = await startFakeHub([journeyRepo(RAW_REPO, join(work, "unsplit"))]);
  const local = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];
  node = await spawnNode({
    args: ["--node-id", "solo", ...local],
    env: { HF_ENDPOINT: hub.url, HF_HOME: join(work, "hf"), HF_HUB_CACHE: "", HF_TOKEN: "", HF_HUB_OFFLINE: "" },
  });
  base = `http://127.0.0.1:${node.apiPort}`;
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  rmSync(work, { recursive: true, force: true });
});

type Listed = OpenAI.Models.Model & { downloaded: boolean; layers: number };

async function listed(): Promise<Map<string, Listed>> {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
  const models = new Map<string, Listed>();
  for await (const m of client.models.list()) models.set(m.id, m as Listed);
  return models;
}

const download = (model: string) =>
  fetch(`${base}/download`, { method: "POST", body: JSON.stringify({ model }) }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as { status?: string; message?: string; error?: { message: string; code: string } },
  }));

describe("listings and requests say what is true on this node", () => {
  test(
    "/v1/models lists only runnable models, each with OpenAI's fields and whether it is downloaded here",
    withNodeLogs(async () => {
      const models = await listed();
      expect(models.get("exo-tiny-chat")).toMatchObject({ object: "model", owned_by: "exo", downloaded: true });
      expect(models.get("llama-3.2-1b")).toMatchObject({ object: "model", layers: 16, downloaded: false });
      for (const unrunnable of ["llava-1.5-7b-hf", "stable-diffusion-2-1-base"])
        expect(models.has(unrunnable)).toBe(false);
      for (const moe of ["qwen-3-30b-a3b", "deepseek-v3", "kimi-k2-instruct"]) expect(models.has(moe)).toBe(true);
    }),
  );

  test(
    "POST /download refuses an unknown id, a repo the hub lacks and an unrunnable model, naming why",
    withNodeLogs(async () => {
      const unknown = await download("llama-9000");
      expect(unknown).toMatchObject({ status: 404, body: { error: { code: "model_not_found" } } });
      expect(unknown.body.error?.message).toContain('unknown model "llama-9000"');
      const absent = await download("exo-test/no-such-repo");
      expect(absent).toMatchObject({ status: 404, body: { error: { code: "model_not_found" } } });
      expect(absent.body.error?.message).toContain("exo-test/no-such-repo");
      const vision = await download("llava-1.5-7b-hf");
      expect(vision).toMatchObject({ status: 400, body: { error: { code: "model_not_supported" } } });
      expect(vision.body.error?.message).toContain('llava-1.5-7b-hf is a "llava" model, which this build cannot run');
      expect(hub.cdnRequests).toEqual([]);
    }),
  );

  test(
    "POST /download of a hub repo starts it, and /modelpool and /v1/models then show it downloaded",
    withNodeLogs(async () => {
      const started = await download(RAW_REPO);
      expect(started).toEqual({
        status: 200,
        body: { status: "success", message: `Download started for model: ${RAW_REPO}` },
      });
      const pool = async () =>
        (await (await fetch(`${base}/modelpool`, { headers: { accept: "application/json" } })).json()) as Record<
          string,
          { downloaded: boolean; download_percentage: number }
        >;
      await waitFor(async () => (await pool())[RAW_REPO]?.downloaded === true, {
        what: `${RAW_REPO} downloaded in /modelpool`,
        timeoutMs: 20_000,
      });
      expect((await pool())[RAW_REPO]?.download_percentage).toBe(100);
      expect((await listed()).get(RAW_REPO)).toMatchObject({ object: "model", layers: 16, downloaded: true });
    }),
    30_000,
  );

  test(
    "DELETE /models/{id} with a broken percent-encoding is a 400, and the node keeps serving",
    withNodeLogs(async () => {
      const res = await fetch(`${base}/models/%E0%A4%A`, { method: "DELETE" });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain("percent-encoding");
      expect((await fetch(`${base}/healthcheck`)).status).toBe(200);
    }),
  );
});
