// Download once, share on the LAN, as processes: three nodes with empty caches on the fake hub answer a request,
// and the hub served each needed file once for the whole cluster; then, with the hub stopped and HF_HUB_OFFLINE=1,
// the three plus a fourth node with an empty cache are placed over four stages: the newcomer (and each old node
// whose stage changed) takes its files from peers, and the answer is the same as the unsplit checkpoint's.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster } from "../helpers/cluster-nodes.ts";
import { startFakeHub, type FakeHub } from "../helpers/fake-hub.ts";
import { JOURNEY_SUPPORT_FILES, cachedFiles, journeyRepo, makeJourneyCheckpoint } from "../helpers/journey-model.ts";
import { runCli, useNodes, withNodeLogs } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const CATALOG_ID = "llama-3.2-1b";
const CATALOG_REPO = "mlx-community/Llama-3.2-1B-Instruct-4bit";
const PROMPT = "count from 3 to 9";
const MAX_TOKENS = 12;

const work = mkdtempSync(join(tmpdir(), "exo-peer-journey-"));
const checkpoint = join(work, "unsplit");
let hub: FakeHub;
let reference: string;

function freshHome(name: string): { env: Record<string, string>; hubCache: string } {
  const dir = mkdtempSync(join(work, `${name}-`));
  const env = {
    HF_ENDPOINT: hub.url,
    HF_HOME: join(dir, "hf"),
    HF_HUB_CACHE: "",
    HF_TOKEN: "",
    HF_HUB_OFFLINE: "",
    EXO_HOME: join(dir, "exo"),
    NO_COLOR: "1",
    EXO_LOG_LEVEL: "3",
  };
  return { env, hubCache: join(dir, "hf", "hub") };
}

beforeAll(async () => {
  await makeJourneyCheckpoint(checkpoint);
  hub = await startFakeHub([journeyRepo(CATALOG_REPO, checkpoint)]);
  const { env } = freshHome("reference");
  const args = ["run", checkpoint, "--prompt", PROMPT, "--max-tokens", String(MAX_TOKENS), "--node-id", "reference"];
  const local = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];
  const run = await runCli([...args, ...local], { env, timeoutMs: 60_000 });
  expect(run.code).toBe(0);
  reference = run.stdout.replace(/\n$/, "");
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("model files shared between nodes", () => {
  // One home per node id, made on first use (the hub's URL is known once beforeAll ran) and kept across tests.
  const made = new Map<string, ReturnType<typeof freshHome>>();
  const homes = { get: (id: string) => made.get(id) ?? made.set(id, freshHome(`peer-${id}`)).get(id) };
  test(
    "3 cold nodes: the hub serves each file once; then, hub stopped, a 4th empty node joins and gets its layers from peers",
    withNodeLogs(async () => {
      const ask = async (cluster: Awaited<ReturnType<typeof startCluster>>, via: string) => {
        const done = await cluster.client(via).chat.completions.create({
          model: CATALOG_ID,
          messages: [{ role: "user", content: PROMPT }],
          temperature: 0,
          max_tokens: MAX_TOKENS,
        });
        return done.choices[0]?.message.content;
      };

      // Phase 1: 16/8/8 GB split the 16 layers 8/4/4; every cache starts empty.
      const trio = await startCluster(
        (
          [
            ["a", 16000],
            ["b", 8000],
            ["c", 8000],
          ] as const
        ).map(([id, memoryMb]) => ({ id, memoryMb, env: homes.get(id)!.env })),
      );
      const cdnBefore = hub.cdnRequests.length;
      const resolvesBefore = hub.hubRequests.length;
      expect(await ask(trio, "a")).toBe(reference);
      await trio.stop();
      const served = new Map<string, number>();
      for (const r of hub.cdnRequests.slice(cdnBefore)) served.set(r.path, (served.get(r.path) ?? 0) + r.bytesSent);
      expect(served.size).toBeGreaterThan(0);
      for (const [path, bytes] of served) expect(bytes).toBe(hub.file(CATALOG_REPO, path).size);
      const resolves = hub.hubRequests.slice(resolvesBefore).filter((p) => p.includes("/resolve/"));
      expect(resolves.length).toBe(new Set(resolves).size); // no file resolved twice
      for (const f of JOURNEY_SUPPORT_FILES) expect(resolves.some((p) => p.endsWith(`/${f}`))).toBe(true);

      // Phase 2: no hub at all. d has an empty cache and memory for a stage of its own.
      await hub.stop();
      const offline = (id: string) => ({ ...homes.get(id)!.env, HF_HUB_OFFLINE: "1" });
      const four = await startCluster(
        (
          [
            ["a", 8000],
            ["b", 8000],
            ["c", 8000],
            ["d", 8000],
          ] as const
        ).map(([id, memoryMb]) => ({ id, memoryMb, env: offline(id) })),
      );
      expect(await ask(four, "d")).toBe(reference);
      const weights = cachedFiles(homes.get("d")!.hubCache, CATALOG_REPO).filter((f) => f.endsWith(".safetensors"));
      expect(weights.length).toBeGreaterThan(0);
      await four.stop();
    }),
    180_000,
  );

  test(
    "hub gone: POST /download on a 5th empty node takes every file from the peers that hold them",
    withNodeLogs(async () => {
      // Runs after the test above: the hub is stopped and a, b, c, d each hold some of the model's files.
      const offline = (id: string) => ({ ...homes.get(id)!.env, HF_HUB_OFFLINE: "1" });
      const five = await startCluster(
        ["a", "b", "c", "d", "e"].map((id) => ({ id, memoryMb: 8000, env: offline(id) })),
      );
      try {
        const e = five.node("e");
        const res = await fetch(`http://127.0.0.1:${e.apiPort}/download`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: CATALOG_ID }),
        });
        expect(res.status).toBe(200);
        const pool = async () =>
          (
            (await (
              await fetch(`http://127.0.0.1:${e.apiPort}/modelpool`, { headers: { accept: "application/json" } })
            ).json()) as Record<string, { downloaded: boolean }>
          )[CATALOG_ID];
        await waitFor(async () => (await pool())?.downloaded === true, {
          what: `${CATALOG_ID} downloaded on e from its peers`,
          timeoutMs: 60_000,
        });
        const weights = cachedFiles(homes.get("e")!.hubCache, CATALOG_REPO).filter((f) => f.endsWith(".safetensors"));
        const onHub = journeyRepo(CATALOG_REPO, checkpoint).files.map((f) => f.path);
        expect(weights).toEqual(onHub.filter((f) => f.endsWith(".safetensors")).sort());
        expect(e.logs()).not.toMatch(/download of .* failed/);
      } finally {
        await five.stop();
      }
    }),
    120_000,
  );
});
