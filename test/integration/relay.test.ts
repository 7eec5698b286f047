// Links through a plain TCP relay (as `ssh -L` makes them), and a pair where only one side can dial:
// both still form a bidirectional topology, and requests flow both ways over the one link.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { startTcpRelay, type TcpRelay } from "../helpers/tcp-relay.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();
const dir = mkdtempSync(join(tmpdir(), "exo-relay-"));
const fileA = join(dir, "a.yaml");
const fileB = join(dir, "b.yaml");
let a: SpawnedNode;
let b: SpawnedNode;
let relay: TcpRelay;

function write(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
async function get(n: SpawnedNode, path: string, init?: RequestInit): Promise<any> {
  return (await fetch(`http://127.0.0.1:${n.apiPort}${path}`, init)).json();
}
const links = async (n: SpawnedNode) =>
  Object.values((await get(n, "/topology")).peer_graph as Record<string, any[]>)
    .flat()
    .map((l) => `${l.from_id}-->${l.to_id}`)
    .sort()
    .join(" ");
const start = (id: string, file: string) =>
  spawnNode({
    args: [
      "--node-id",
      id,
      "--port",
      "0",
      "--api-port",
      "0",
      "--host",
      "127.0.0.1",
      "--api-host",
      "127.0.0.1",
      "--config",
      file,
      "--health-interval-ms",
      "300",
    ],
  });

beforeAll(async () => {
  write(fileA, "peers: {}\n");
  write(fileB, "peers: {}\n");
  [a, b] = await Promise.all([start("a", fileA), start("b", fileB)]);
  relay = startTcpRelay(b.port);
  // a reaches b only through the relay; b's way to a is a dead address: it can only use a's link.
  write(fileB, `peers:\n  a: { address: 127.0.0.1, port: 1 }\n`);
  write(fileA, `peers:\n  b: { address: 127.0.0.1, port: ${relay.port} }\n`);
});
afterAll(() => {
  relay?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test(
  "a link through a TCP relay, dialled from one side only, gives both nodes the same bidirectional topology",
  withNodeLogs(async () => {
    await waitFor(async () => (await links(a)) === "a-->b b-->a" && (await links(b)) === "a-->b b-->a", {
      what: "a-->b and b-->a at both nodes",
    });
    const net = await get(b, "/debug/net");
    const aAtB = net.peers.find((p: any) => p.nodeId === "a");
    expect(aAtB.outbound).toBeUndefined();
    expect(aAtB.inbound.length).toBe(1);
    expect(aAtB.dialFailures).toBeGreaterThanOrEqual(1);
  }),
);

test(
  "health checks flow both ways over the single relayed connection, which is reused",
  withNodeLogs(async () => {
    const connectionsBefore = relay.connections();
    const fromB = await get(b, "/debug/health-burst?peer=a&count=10", { method: "POST" });
    expect(fromB.ok).toBe(true);
    expect(fromB.after.inbound[0].connectionId).toBe(fromB.before.inbound[0].connectionId);
    const fromA = await get(a, "/debug/health-burst?peer=b&count=10", { method: "POST" });
    expect(fromA.ok).toBe(true);
    expect(fromA.after.outbound.localPort).toBe(fromA.before.outbound.localPort);
    expect(fromA.after.dials).toBe(fromA.before.dials);
    expect(relay.connections()).toBe(connectionsBefore);
    expect(relay.connections()).toBe(fromA.after.dials);
  }),
);
