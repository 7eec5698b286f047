// A new user's path from a cold cache, as processes (the sources, or the compiled binary when NODE_BIN is set):
// nodes with empty HF_HOMEs and HF_ENDPOINT on the fake hub answer `exo run REPO --prompt` and the openai client,
// on 1, 2 and 3 stages, by catalog id and by raw repo id; `exo pull` then a fresh process offline. Every answer
// (greedy) equals the unsplit checkpoint's answer from a local directory, and each node's cache holds exactly the
// files of its own layers (a node that only coordinates: the tokenizer and chat template, no weights).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster } from "../helpers/cluster-nodes.ts";
import { startFakeHub, type FakeHub } from "../helpers/fake-hub.ts";
import {
  JOURNEY_SUPPORT_FILES,
  JOURNEY_WEIGHT_FILES,
  cachedFiles,
  journeyRepo,
  makeJourneyCheckpoint,
} from "../helpers/journey-model.ts";
import { runCli, spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

/** Served under the catalog's repo for llama-3.2-1b (16 layers), and under a repo id no catalog knows. */
const CATALOG_ID = "llama-3.2-1b";
const CATALOG_REPO = "mlx-community/Llama-3.2-1B-Instruct-4bit";
const RAW_REPO = "exo-test/journey-llama-16";
const PROMPT = "count from 3 to 9";
const MAX_TOKENS = 12;
const [W1, W2, W3, W4] = JOURNEY_WEIGHT_FILES as [string, string, string, string];

const work = mkdtempSync(join(tmpdir(), "exo-journey-"));
const checkpoint = join(work, "unsplit");
let hub: FakeHub;
/** The unsplit checkpoint's answer, run from its local directory (no hub, one file). */
let reference: string;

/** A fresh, empty HF_HOME and EXO_HOME for one node, pointed at the fake hub. */
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

const LOCAL = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];

/** `exo run MODEL --prompt` to completion: its stdout is the answer. */
async function exoRun(model: string, env: Record<string, string>, extra: string[] = []) {
  const args = ["run", model, "--prompt", PROMPT, "--max-tokens", String(MAX_TOKENS), ...LOCAL, ...extra];
  const res = await runCli(args, { env, timeoutMs: 60_000 });
  if (res.code !== 0) console.error(`exo ${args.join(" ")} exited ${res.code}\n${res.stderr}`);
  expect(res.code).toBe(0);
  return res;
}

function peerFile(name: string, peers: SpawnedNode[]): string {
  const path = join(work, `${name}.json`);
  const entries = Object.fromEntries(peers.map((p) => [p.nodeId, { address: "127.0.0.1", port: p.port }]));
  writeFileSync(path, JSON.stringify({ peers: entries }));
  return path;
}

beforeAll(async () => {
  await makeJourneyCheckpoint(checkpoint);
  hub = await startFakeHub([journeyRepo(CATALOG_REPO, checkpoint), journeyRepo(RAW_REPO, checkpoint)]);
  const { env } = freshHome("reference");
  const run = await exoRun(checkpoint, env, ["--node-id", "reference"]);
  reference = run.stdout.replace(/\n$/, "");
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("from a cold cache through the fake hub", () => {
  test("the reference answer is a real generation of the unsplit checkpoint", () => {
    // 12 tokens of a random model: not empty, and not the prompt echoed back.
    expect(reference.length).toBeGreaterThan(0);
    expect(reference).not.toContain(PROMPT);
  });

  test(
    "1 node: `exo run RAW_REPO --prompt` downloads the whole model and answers as the unsplit checkpoint",
    withNodeLogs(async () => {
      const home = freshHome("solo");
      const run = await exoRun(RAW_REPO, home.env, ["--node-id", "solo"]);
      expect(run.stdout).toBe(`${reference}\n`);
      expect(run.stderr).toContain(`${RAW_REPO} ready on solo[0,16)`);
      expect(cachedFiles(home.hubCache, RAW_REPO)).toEqual([...JOURNEY_SUPPORT_FILES, ...JOURNEY_WEIGHT_FILES].sort());
    }),
    90_000,
  );

  test(
    "2 nodes: `exo run RAW_REPO --prompt` with an `exo start` peer; each fetches only its half",
    withNodeLogs(async () => {
      const bHome = freshHome("pair-b");
      const b = await spawnNode({ args: ["--node-id", "b", ...LOCAL, "--memory-mb", "8000"], env: bHome.env });
      const aHome = freshHome("pair-a");
      const config = peerFile("pair", [b]);
      const run = await exoRun(RAW_REPO, aHome.env, ["--node-id", "a", "--memory-mb", "8000", "--config", config]);
      expect(run.stdout).toBe(`${reference}\n`);
      expect(run.stderr).toContain(`${RAW_REPO} ready on a[0,8) → b[8,16)`);
      expect(cachedFiles(aHome.hubCache, RAW_REPO)).toEqual([...JOURNEY_SUPPORT_FILES, W1, W2].sort());
      expect(cachedFiles(bHome.hubCache, RAW_REPO)).toEqual([...JOURNEY_SUPPORT_FILES, W3, W4].sort());
      await b.stop();
    }),
    90_000,
  );

  test(
    "3 stages and a coordinator without layers: the openai client by catalog id, streamed and not",
    withNodeLogs(async () => {
      // Memory 16/8/8 GB splits 16 layers 8/4/4; d's 1 MB holds no layer, so it only coordinates.
      const specs = [
        ["a", 16000],
        ["b", 8000],
        ["c", 8000],
        ["d", 1],
      ] as const;
      const homes = new Map<string, ReturnType<typeof freshHome>>(specs.map(([id]) => [id, freshHome(`trio-${id}`)]));
      const cluster = await startCluster(specs.map(([id, memoryMb]) => ({ id, memoryMb, env: homes.get(id)!.env })));
      const d = cluster.node("d");
      // Placement counts the peers d is linked to right now, not the ones it knows of through others' topology.
      await waitFor(
        async () => {
          const net = (await (await fetch(`http://127.0.0.1:${d.apiPort}/debug/net`)).json()) as {
            peers: Array<{ nodeId: string; up: boolean }>;
          };
          return ["a", "b", "c"].every((id) => net.peers.some((p) => p.nodeId === id && p.up));
        },
        { what: "node d linked to a, b and c", timeoutMs: 20_000 },
      );
      const client = cluster.client("d");
      const request = { model: CATALOG_ID, messages: [{ role: "user" as const, content: PROMPT }], temperature: 0 };
      const done = await client.chat.completions.create({ ...request, max_tokens: MAX_TOKENS });
      expect(done.choices[0]?.message.content).toBe(reference);
      expect(done.usage?.completion_tokens).toBe(MAX_TOKENS);
      let streamed = "";
      const stream = await client.chat.completions.create({ ...request, max_tokens: MAX_TOKENS, stream: true });
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
      expect(streamed).toBe(reference);
      expect(d.logs()).toContain(`${CATALOG_ID} ready on a[0,8) → b[8,12) → c[12,16)`);

      const files = (id: string) => cachedFiles(homes.get(id)!.hubCache, CATALOG_REPO);
      expect(files("a")).toEqual([...JOURNEY_SUPPORT_FILES, W1, W2].sort());
      expect(files("b")).toEqual([...JOURNEY_SUPPORT_FILES, W3].sort());
      expect(files("c")).toEqual([...JOURNEY_SUPPORT_FILES, W4].sort());
      expect(files("d")).toEqual([...JOURNEY_SUPPORT_FILES].sort());
      await cluster.stop();
    }),
    120_000,
  );

  test(
    "`exo pull CATALOG_ID`, then a fresh `exo run` offline (HF_HUB_OFFLINE=1) answers without asking the hub",
    withNodeLogs(async () => {
      const home = freshHome("offline");
      const pull = await runCli(["pull", CATALOG_ID], { env: home.env, timeoutMs: 60_000 });
      expect(pull.stderr).not.toContain("ERROR");
      expect(pull.code).toBe(0);
      expect(pull.stdout).toContain(`pulled ${CATALOG_ID} (${CATALOG_REPO}`);
      expect(cachedFiles(home.hubCache, CATALOG_REPO)).toEqual(
        [...JOURNEY_SUPPORT_FILES, ...JOURNEY_WEIGHT_FILES].sort(),
      );

      const asked = hub.hubRequests.length;
      const run = await exoRun(CATALOG_ID, { ...home.env, HF_HUB_OFFLINE: "1" }, ["--node-id", "offline"]);
      expect(run.stdout).toBe(`${reference}\n`);
      expect(hub.hubRequests.length).toBe(asked);
    }),
    90_000,
  );
});
