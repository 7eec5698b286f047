// A peer that links, answers HEALTH and TOPOLOGY, and never answers PREPARE (test/helpers/silent-peer.ts) must not
// hang anyone: with --prepare-stall-ms 1500 the prepare fails once that node shows no progress for 1.5 s, and the
// openai client (JSON and stream) and `exo run` get an error naming the node and the phase. The node keeps serving.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { startSilentPeer, type SilentPeer } from "../helpers/silent-peer.ts";
import { runCli, spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const MODEL = "exo-tiny-chat";
const STALLED = `node quiet made no progress for 1.5 s in the PREPARE phase (it never reported a status) of preparing ${MODEL}`;
const LOCAL = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];
// The fake engine keeps this file fast; the silent peer holds the most memory, so it is stage 0 of every plan.
const NODE = ["--engine", "fake", "--memory-mb", "4000", "--prepare-stall-ms", "1500", "--health-interval-ms", "500"];
const dir = mkdtempSync(join(tmpdir(), "exo-silent-"));
let quiet: SilentPeer;
let node: SpawnedNode;
let config: string;

beforeAll(async () => {
  quiet = startSilentPeer("quiet", 64_000);
  config = join(dir, "peers.json");
  writeFileSync(config, JSON.stringify({ peers: { quiet: { address: "127.0.0.1", port: quiet.port } } }));
  node = await spawnNode({ args: ["--node-id", "a", ...LOCAL, ...NODE, "--config", config] });
  await waitFor(
    async () => {
      const topo = (await (await fetch(`http://127.0.0.1:${node.apiPort}/topology`)).json()) as { nodes: object };
      return "quiet" in topo.nodes;
    },
    { what: "node a to link to the silent peer" },
  );
});

afterAll(() => {
  quiet?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a peer that never answers PREPARE", () => {
  test(
    "the openai client gets an error naming the node and the phase, JSON and streamed; the node keeps serving",
    withNodeLogs(async () => {
      // The client's own deadline is far beyond the stall period: a hang fails this test instead of passing it.
      const client = new OpenAI({
        baseURL: `http://127.0.0.1:${node.apiPort}/v1`,
        apiKey: "unused",
        maxRetries: 0,
        timeout: 30_000,
      });
      const messages = [{ role: "user" as const, content: "hello" }];
      const err = await client.chat.completions.create({ model: MODEL, messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(504);
      expect((err as Error).message).toContain(STALLED);
      expect(quiet.prepares()).toBeGreaterThanOrEqual(1);

      // Streamed: the 200 went out before the deadline, so the error arrives as the stream's error event.
      const streamed = await (async () => {
        const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
        for await (const _ of stream);
      })().catch((e: unknown) => e);
      expect((streamed as Error).message).toContain(STALLED);
      expect(quiet.prepares()).toBeGreaterThanOrEqual(2);
      expect((await fetch(`http://127.0.0.1:${node.apiPort}/healthcheck`)).status).toBe(200);
    }),
    30_000,
  );

  test(
    "`exo run --prompt` says the same and exits non-zero",
    withNodeLogs(async () => {
      const run = await runCli(
        ["run", MODEL, "--prompt", "hello", "--node-id", "r", ...LOCAL, ...NODE, "--config", config],
        {
          timeoutMs: 30_000,
        },
      );
      expect(run.code).not.toBe(0);
      expect(run.stderr).toContain(STALLED);
    }),
    30_000,
  );
});
