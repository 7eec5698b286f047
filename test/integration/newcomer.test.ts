// What a newcomer trips over first, as processes: a port in use is one line naming the flag; a mistyped model id
// suggests catalog ids before any port is bound; doctor/pull/rm without their argument show their own usage;
// --help shows exactly the flags the README documents (the test knobs hidden); a peer entry at the node's own
// address is said once and never dialled.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCli, spawnNode, useNodes, withNodeLogs } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();
const dir = mkdtempSync(join(tmpdir(), "exo-newcomer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const README = readFileSync(resolve(import.meta.dir, "../../README.md"), "utf8");
const local = ["--host", "127.0.0.1", "--api-host", "127.0.0.1"];
const env = { NO_COLOR: "1" };

/** A port held by another listener for the duration of `fn`. */
async function withTakenPort(fn: (port: number) => Promise<void>): Promise<void> {
  const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    await fn(taken.port);
  } finally {
    taken.stop(true);
  }
}

describe("newcomer messages", () => {
  test("an API port or node port in use is one line naming the flag to change, never a stack trace", async () => {
    // The whole of stderr is that line: the node's start-up warnings (e.g. no cluster key) come only once it is up.
    await withTakenPort(async (port) => {
      const api = await runCli(["start", "--node-id", "x", "--port", "0", "--api-port", String(port), ...local], {
        env,
      });
      expect(api.code).toBe(1);
      expect(api.stderr.trim()).toBe(
        `exo: cannot listen on 127.0.0.1:${port}: port in use; pick another --api-port (0 picks a free one) [E_CONFIG_INVALID]`,
      );
      const node = await runCli(["start", "--node-id", "x", "--port", String(port), "--api-port", "0", ...local], {
        env,
      });
      expect(node.code).toBe(1);
      expect(node.stderr.trim()).toBe(
        `exo: cannot listen on 127.0.0.1:${port}: port in use; pick another --port (0 picks a free one) [E_CONFIG_INVALID]`,
      );
    });
  });

  test("a mistyped model id suggests the closest catalog ids, before `exo run` binds any port", async () => {
    await withTakenPort(async (port) => {
      // Both ports are taken: had the node bound them first, the error would be about the port.
      const args = ["run", "Llama-3.2-1bb", "--prompt", "hi", "--port", String(port), "--api-port", String(port)];
      const run = await runCli([...args, ...local], { env });
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('unknown model "Llama-3.2-1bb"');
      expect(run.stderr).toContain("did you mean llama-3.2-1b, llama-3.2-3b");
      expect(run.stderr).not.toContain("cannot listen");
    });
  });

  test("`exo pull` of a model this build cannot run is refused before any download", async () => {
    const res = await runCli(["pull", "llava-1.5-7b-hf"], { env: { ...env, HF_ENDPOINT: "http://127.0.0.1:9" } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('llava-1.5-7b-hf is a "llava" model, which this build cannot run');
    expect(res.stderr).toContain("[E_MODEL_UNSUPPORTED]");
  });

  test("`exo doctor`, `exo pull` and `exo rm` without their argument print their own usage", async () => {
    for (const [verb, usage, missing] of [
      ["doctor", "USAGE exo doctor", "Missing required argument: --config"],
      ["pull", "USAGE exo pull [OPTIONS] <MODEL>", "Missing required positional argument: MODEL"],
      ["rm", "USAGE exo rm [OPTIONS] <MODEL>", "Missing required positional argument: MODEL"],
    ] as const) {
      const res = await runCli([verb], { env });
      expect(res.code).toBe(1);
      expect(res.stdout).toContain(usage);
      expect(res.stdout).not.toContain("COMMANDS");
      expect(res.stderr).toContain(missing);
    }
  });

  test("--help of start and run lists the node flags the README documents and hides the ones it calls hidden", async () => {
    const hiddenLine = /For tests only \(hidden from `--help`\): (.*)/.exec(README)?.[1] ?? "";
    const hidden = [...hiddenLine.matchAll(/`--([a-z-]+)/g)].map((m) => m[1]!);
    expect(hidden).toEqual(["engine", "fake-step-ms", "memory-mb", "max-batch"]);
    const nodeFlagsText = README.slice(README.indexOf("Node flags (`start`, `run`)"), README.indexOf("For tests only"));
    const documented = new Set([...nodeFlagsText.matchAll(/`--([a-z-]+)/g)].map((m) => m[1]!));
    for (const verb of ["start", "run"]) {
      const help = (await runCli([verb, "--help"], { env })).stdout;
      const shown = [...help.matchAll(/--([a-z-]+)=/g)].map((m) => m[1]!);
      for (const flag of hidden) expect(shown).not.toContain(flag);
      const nodeFlags = shown.filter((f) => !["prompt", "temperature", "max-tokens", "peer-wait-ms"].includes(f));
      expect(nodeFlags.filter((f) => !documented.has(f))).toEqual([]);
      expect([...documented].filter((f) => !nodeFlags.includes(f))).toEqual([]);
    }
  });

  test(
    "a peer entry at the node's own address is said once, across reloads, and never dialled",
    withNodeLogs(async () => {
      const config = join(dir, "self.json");
      const write = (peers: Record<string, { address: string; port: number }>) => {
        writeFileSync(`${config}.tmp`, JSON.stringify({ peers }));
        renameSync(`${config}.tmp`, config);
      };
      // The node's port must be known before the file names it: take a free one, then start the node on it.
      const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
      const port = probe.port;
      probe.stop(true);
      write({ ghost: { address: "127.0.0.1", port } });
      const node = await spawnNode({
        args: [
          "--node-id",
          "a",
          "--port",
          String(port),
          "--api-port",
          "0",
          ...local,
          "--config",
          config,
          "--health-interval-ms",
          "100",
        ],
      });
      const warning = `peer ghost at 127.0.0.1:${port} is this node's own address (node a)`;
      await waitFor(() => node.logs().includes(warning), { what: "the self-address warning" });
      write({ ghost: { address: "127.0.0.1", port }, other: { address: "127.0.0.1", port: 1 } });
      await waitFor(() => node.logs().includes("changed: 2 entries"), { what: "the reload" });
      expect(node.logs().split(warning).length - 1).toBe(1);
      expect(node.logs()).not.toContain("same node id");
      const net = (await (await fetch(`http://127.0.0.1:${node.apiPort}/debug/net`)).json()) as {
        peers: Array<{ id?: string; nodeId?: string }>;
      };
      expect(JSON.stringify(net.peers)).not.toContain("ghost");
    }),
  );
});
