// Two (then three) node processes on 127.0.0.1 reproduce the seed report, follow peer-file edits,
// and survive a SIGKILL'd peer. Nodes are shared across the tests of this file (they run in order).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli, spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();
const HEALTH_MS = 300;
const dir = mkdtempSync(join(tmpdir(), "exo-links-"));
const peerFile = join(dir, "peers.yaml");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Replace the peer file atomically, as editors do. */
function writePeers(text: string): void {
  const tmp = `${peerFile}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, peerFile);
}
const entry = (n: SpawnedNode) => `  ${n.nodeId}: { address: 127.0.0.1, port: ${n.port} }\n`;

async function get(n: SpawnedNode, path: string, init?: RequestInit): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${n.apiPort}${path}`, init);
  return res.json();
}
const peerStats = async (n: SpawnedNode, id: string) =>
  (await get(n, "/debug/net")).peers.find((p: any) => p.nodeId === id);
const nodeIds = async (n: SpawnedNode) => Object.keys((await get(n, "/topology")).nodes).sort();
const linkLines = async (n: SpawnedNode) =>
  Object.values((await get(n, "/topology")).peer_graph as Record<string, any[]>)
    .flat()
    .map((l) => `${l.from_id}-->${l.to_id}[${l.description}]`)
    .sort();

function start(id: string, port = "0"): Promise<SpawnedNode> {
  return spawnNode({
    args: [
      "--node-id",
      id,
      "--port",
      port,
      "--api-port",
      "0",
      "--host",
      "127.0.0.1",
      "--api-host",
      "127.0.0.1",
      "--config",
      peerFile,
      "--health-interval-ms",
      String(HEALTH_MS),
    ],
  });
}

let a: SpawnedNode;
let b: SpawnedNode;

/** Ports the kernel just handed out and released: the seed report starts both nodes from one static file. */
function freePorts(n: number): number[] {
  const servers = Array.from({ length: n }, () =>
    Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }),
  );
  const ports = servers.map((s) => s.port);
  for (const s of servers) s.stop(true);
  return ports;
}

beforeAll(async () => {
  const [pa, pb] = freePorts(2);
  writePeers(`peers:\n  a: { address: 127.0.0.1, port: ${pa} }\n  b: { address: 127.0.0.1, port: ${pb} }\n`);
  a = await start("a", String(pa)); // a's first dial finds nobody; b, started second, links on its first attempt
  b = await start("b", String(pb));
});

describe("two nodes", () => {
  test(
    "reproduce the seed report: links both ways from one successful dial each, 3 consistent collections, 10 health checks on one unchanged connection",
    withNodeLogs(async () => {
      await waitFor(async () => (await peerStats(a, "b"))?.outbound && (await peerStats(b, "a"))?.outbound, {
        what: "links both ways",
      });
      const aToB = await peerStats(a, "b");
      const bToA = await peerStats(b, "a");
      expect([bToA.dials, bToA.dialFailures]).toEqual([1, 0]);
      expect(aToB.dials - aToB.dialFailures).toBe(1); // one successful dial: no reconnects since
      // Each side's outbound link is the other side's inbound link: same ports seen from both ends.
      expect(bToA.inbound.map((l: any) => l.remotePort)).toEqual([aToB.outbound.localPort]);
      expect(aToB.inbound.map((l: any) => l.remotePort)).toEqual([bToA.outbound.localPort]);

      const expectedLinks = ["a-->b[MAN]", "b-->a[MAN]"];
      await waitFor(
        async () =>
          (await linkLines(a)).join() === expectedLinks.join() && (await linkLines(b)).join() === expectedLinks.join(),
        { what: "both links in both topologies" },
      );
      for (let i = 0; i < 3; i++) {
        expect(await nodeIds(a)).toEqual(["a", "b"]);
        expect(await nodeIds(b)).toEqual(["a", "b"]);
        expect(await linkLines(a)).toEqual(expectedLinks);
      }

      for (const [from, to] of [
        [a, "b"],
        [b, "a"],
      ] as const) {
        const burst = await get(from, `/debug/health-burst?peer=${to}&count=10`, { method: "POST" });
        expect(burst.ok).toBe(true);
        expect(burst.latencies_ms.length).toBe(10);
        expect(burst.after.outbound.connectionId).toBe(burst.before.outbound.connectionId);
        expect(burst.after.outbound.localPort).toBe(burst.before.outbound.localPort);
        expect(burst.after.outbound.requestsSent - burst.before.outbound.requestsSent).toBeGreaterThanOrEqual(10);
        expect(burst.after.dials).toBe(burst.before.dials);
      }
      expect(await get(a, "/healthcheck")).toEqual({ status: "ok" });
    }),
  );

  test(
    "exo doctor passes every check on the pair and fails, exit 1, when a listed node is dead; exo topology prints the links",
    withNodeLogs(async () => {
      const ok = await runCli(["doctor", "--config", peerFile]);
      expect(ok.stdout).toMatch(/result: all \d+ checks passed/);
      expect(ok.stdout).toMatch(/PASS\s+10 health checks\s+one connection \(local port \d+\)/);
      expect(ok.code).toBe(0);
      const withDead = join(dir, "with-dead.yaml");
      writeFileSync(withDead, `peers:\n${entry(a)}${entry(b)}  gone: { address: 127.0.0.1, port: 1 }\n`);
      const bad = await runCli(["doctor", "--config", withDead]);
      expect(bad.stdout).toMatch(/FAIL\s+connect \+ handshake\s+E_PEER_DOWN/);
      expect(bad.code).toBe(1);
      const topo = await runCli(["topology", "--api-port", String(a.apiPort)]);
      expect(topo.stdout).toContain("a --> b [MAN]");
      expect(topo.stdout).toContain("b --> a [MAN]");
      expect(topo.stdout).toMatch(/^\s+a\s.*\(this node\)$/m);
    }),
  );

  test(
    "peer file edits: a third node appears within 2 s, broken edits change nothing and log one clear error each, removal drops it; Ctrl-C exits 0",
    withNodeLogs(async () => {
      const c = await start("c");
      writePeers(`peers:\n${entry(a)}${entry(b)}${entry(c)}`);
      const t0 = Date.now();
      await waitFor(async () => (await nodeIds(a)).join() === "a,b,c" && (await nodeIds(b)).join() === "a,b,c", {
        what: "c in every topology",
        timeoutMs: 2000,
      });
      expect(Date.now() - t0).toBeLessThan(2000);

      const broken = [
        ["peers:\n  a: [unclosed\n", "invalid YAML"],
        [`peers:\n${entry(a)}${entry(b)}  c: { address: 127.0.0.1 }\n`, "peers.c.port"],
        [`peers:\n${entry(a)}${entry(b)}  c: { address: 127.0.0.1, port: 70000 }\n`, "70000"],
      ] as const;
      for (const [text, words] of broken) {
        writePeers(text);
        await waitFor(() => a.logs().includes(words) && b.logs().includes(words), { what: `the error about ${words}` });
        expect(
          a
            .logs()
            .split("\n")
            .filter((l) => l.includes(words) && l.includes("keeping the last good")).length,
        ).toBe(1);
        expect(await nodeIds(a)).toEqual(["a", "b", "c"]);
      }

      writePeers(`peers:\n${entry(a)}${entry(b)}`);
      await waitFor(async () => (await nodeIds(a)).join() === "a,b" && (await nodeIds(b)).join() === "a,b", {
        what: "c dropped",
      });
      c.kill("SIGINT");
      expect(await c.proc.exited).toBe(0);
    }),
  );

  test(
    "a SIGKILL'd peer is marked down within one health interval plus its timeout, then reconnected after a restart",
    withNodeLogs(async () => {
      await waitFor(async () => (await peerStats(a, "b"))?.up, { what: "b up" });
      const aPid = a.proc.pid;
      const port = b.port;
      b.kill("SIGKILL");
      const killedAt = Date.now();
      await waitFor(async () => (await peerStats(a, "b"))?.up === false, {
        what: "b down at a",
        timeoutMs: 2 * HEALTH_MS + 1000,
      });
      expect(Date.now() - killedAt).toBeLessThan(2 * HEALTH_MS + 1000);
      expect(await nodeIds(a)).toEqual(["a"]);

      b = await start("b", String(port));
      await waitFor(
        async () => (await peerStats(a, "b"))?.outbound && (await linkLines(a)).join() === "a-->b[MAN],b-->a[MAN]",
        { what: "a re-dialled b and the topology is restored" },
      );
      expect(a.proc.pid).toBe(aPid);
      expect(a.exitCode()).toBeNull();
      expect((await peerStats(a, "b")).dials).toBeGreaterThan(1);
    }),
  );

  test(
    "a frozen peer (SIGSTOP) misses its health check and is marked down within one interval plus the timeout, then rejoins after SIGCONT",
    withNodeLogs(async () => {
      await waitFor(async () => (await peerStats(a, "b"))?.outbound && (await peerStats(a, "b"))?.up, { what: "b up" });
      b.kill("SIGSTOP");
      const frozenAt = Date.now();
      try {
        await waitFor(async () => (await peerStats(a, "b"))?.up === false, {
          what: "b down at a",
          timeoutMs: 2 * HEALTH_MS + 1000,
        });
        expect(Date.now() - frozenAt).toBeLessThan(2 * HEALTH_MS + 1000);
        expect(a.logs()).toContain("health check of b failed: E_PEER_TIMEOUT");
      } finally {
        b.kill("SIGCONT");
      }
      await waitFor(
        async () => (await peerStats(a, "b"))?.outbound && (await linkLines(a)).join() === "a-->b[MAN],b-->a[MAN]",
        { what: "b back at a" },
      );
    }),
  );

  test(
    "a node stopped with SIGTERM exits 0 and its peer sees a clean disconnect",
    withNodeLogs(async () => {
      await waitFor(async () => (await peerStats(a, "b"))?.up, { what: "b up" });
      expect(await b.stop()).toBe(0);
      await waitFor(async () => (await peerStats(a, "b"))?.up === false, { what: "b down at a" });
      expect(a.logs()).toContain("closed by the other side");
      expect(a.exitCode()).toBeNull();
    }),
  );
});
