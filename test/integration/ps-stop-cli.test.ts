// `exo ps` and `exo stop MODEL` against a 2-node cluster on the embedded model (MLX runners), as a person runs
// them: nothing placed, a request places the model over both nodes, ps shows each node's layers and state,
// stop unloads it everywhere (the runners give their memory back), and the next request loads it again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { startCluster, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const REPO_ROOT = resolve(import.meta.dir, "../..");
const MODEL = "exo-tiny-chat";
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startCluster(
    [
      { id: "a", memoryMb: 6000 },
      { id: "b", memoryMb: 2000 },
    ],
    ["--health-interval-ms", "500"],
  );
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Run `exo <args>` against node a's API. */
async function exo(...args: string[]) {
  const proc = Bun.spawn([process.execPath, "src/main.ts", ...args, "--api-port", String(cluster.node("a").apiPort)], {
    cwd: REPO_ROOT,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, EXO_LOG_LEVEL: "1" },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, code };
}

async function ask(prompt: string): Promise<string> {
  const res = await cluster.client("a").chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: prompt }],
    temperature: 0,
  });
  return res.choices[0]!.message.content ?? "";
}

describe("exo ps / exo stop", () => {
  test(
    "ps shows the model's layers on each node, stop unloads it on both, the next request loads it again",
    withNodeLogs(async () => {
      const empty = await exo("ps");
      expect(empty.code).toBe(0);
      expect(empty.stdout).toContain("no models placed");

      expect(await ask("count from 3 to 9")).toBe("3 4 5 6 7 8 9");

      const json = JSON.parse((await exo("ps", "--json")).stdout) as {
        placements: {
          model: string;
          n_layers: number;
          stages: { node_id: string; layer_start: number; layer_end: number; phase: string }[];
        }[];
      };
      expect(json.placements).toHaveLength(1);
      const p = json.placements[0]!;
      expect(p.model).toBe(MODEL);
      expect((p as { state?: string }).state).toBe("ready");
      expect(p.stages.map((s) => s.node_id)).toEqual(["a", "b"]);
      expect(p.stages[0]!.layer_start).toBe(0);
      expect(p.stages[0]!.layer_end).toBe(p.stages[1]!.layer_start);
      expect(p.stages[1]!.layer_end).toBe(p.n_layers);
      expect(p.stages.map((s) => s.phase)).toEqual(["ready", "ready"]);

      const table = await exo("ps");
      expect(table.code).toBe(0);
      const lines = table.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^MODEL\s+STATE\s+NODE\s+LAYERS\s+MEMORY\s+STATUS\s+REQUESTS$/);
      expect(lines[1]).toMatch(
        new RegExp(`^${MODEL}\\s+ready\\s+a\\s+\\[0, ${p.stages[0]!.layer_end}\\) of 4\\s+5\\.9 GB\\s+ready\\s+0$`),
      );
      expect(lines[2]).toMatch(new RegExp(`^\\s+b\\s+\\[${p.stages[1]!.layer_start}, 4\\) of 4\\s+2\\.0 GB\\s+ready$`));

      const stop = await exo("stop", MODEL);
      expect(stop.stderr).toBe("");
      expect(stop.code).toBe(0);
      expect(stop.stdout).toBe(`stopped ${MODEL} on a, b\n`);
      for (const n of cluster.nodes) {
        await waitFor(() => n.logs().includes(`${MODEL} unloaded from this node`), {
          what: `node ${n.nodeId} to unload`,
          timeoutMs: 10_000,
        });
        // The MLX runner holding the shard was stopped, so its memory is back with the system.
        expect(n.logs()).toContain("stopped: the model was unloaded");
      }
      expect((await exo("ps")).stdout).toContain("no models placed");

      const again = await exo("stop", MODEL);
      expect(again.code).not.toBe(0);
      expect(again.stderr).toContain(`model ${MODEL} is not loaded on any node`);

      expect(await ask("reverse abc")).toBe("cba");
      expect((await exo("ps")).stdout).toContain(MODEL);
    }),
    180_000,
  );

  test("stop of an unknown model and ps without a node say what is wrong", async () => {
    const unknown = await exo("stop", "no-such-model");
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain("no-such-model");
    const proc = Bun.spawn([process.execPath, "src/main.ts", "ps", "--api-port", "1"], {
      cwd: REPO_ROOT,
      stderr: "pipe",
      stdout: "pipe",
    });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).not.toBe(0);
    expect(stderr).toContain("no node answers at http://127.0.0.1:1");
  });
});
