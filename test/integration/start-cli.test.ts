// `exo start` at the edges: bare `exo` starts a node, a broken peer file or a taken port stops it at once
// with a message naming what is wrong (exit 1), and the ready line carries the real ports.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli, spawnNode, useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();
const dir = mkdtempSync(join(tmpdir(), "exo-start-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const local = ["--host", "127.0.0.1", "--api-host", "127.0.0.1"];

test(
  "bare `exo` with node flags starts a node that serves /healthcheck on the port of its ready line",
  withNodeLogs(async () => {
    const node = await spawnNode({ verb: "", args: ["--node-id", "bare", "--port", "0", "--api-port", "0", ...local] });
    expect(node.nodeId).toBe("bare");
    expect(node.port).toBeGreaterThan(0);
    expect(await (await fetch(`http://127.0.0.1:${node.apiPort}/healthcheck`)).json()).toEqual({ status: "ok" });
    expect(await node.stop()).toBe(0);
  }),
);

test("a broken peer file or a port in use stops `exo start` with exit 1 and a message naming the problem", async () => {
  const bad = join(dir, "bad.yaml");
  writeFileSync(bad, "peers:\n  a: { address: 127.0.0.1, port: 70000 }\n");
  const r1 = await runCli(["start", "--node-id", "x", "--config", bad, "--port", "0", "--api-port", "0", ...local]);
  expect(r1.code).toBe(1);
  expect(r1.stdout + r1.stderr).toContain("peers.a.port: expected an integer 1-65535, got 70000");

  const taken = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  try {
    const r2 = await runCli(["start", "--node-id", "x", "--port", String(taken.port), "--api-port", "0", ...local]);
    expect(r2.code).toBe(1);
    expect(r2.stdout + r2.stderr).toContain(`cannot listen on 127.0.0.1:${taken.port}`);
  } finally {
    taken.stop(true);
  }
});
