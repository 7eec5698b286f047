// Start several real node processes on 127.0.0.1 that link into one cluster through a shared peer file,
// and read their request state over HTTP.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { spawnNode, type SpawnedNode } from "./spawn-node.ts";
import { waitFor } from "./wait.ts";

export interface ClusterNodeSpec {
  id: string;
  /** Reported memory in MB (placement splits layers by it). */
  memoryMb?: number;
  args?: string[];
  /** Extra environment of this node (e.g. its own HF_HOME). */
  env?: Record<string, string>;
}

export interface LiveRequests {
  /** Waiting in the admission queue (absent from nodes before the queue existed). */
  queued?: number;
  coordinating: number;
  stages: number;
  engine: number;
}

export interface TestCluster {
  nodes: SpawnedNode[];
  node(id: string): SpawnedNode;
  client(id: string): OpenAI;
  /** Start one more node on the same peer file (every other node links to it once the file reloads). */
  add(spec: ClusterNodeSpec): Promise<SpawnedNode>;
  stop(): Promise<void>;
}

/**
 * Start the nodes one after another on one shared peer file (hot-reloaded), and wait until every node sees every
 * other one. `apiKey` is set as every node's EXO_API_KEY (and used by the helper's own calls and clients).
 */
export async function startCluster(
  specs: ClusterNodeSpec[],
  common: string[] = [],
  opts: { apiKey?: string } = {},
): Promise<TestCluster> {
  const env = opts.apiKey ? { EXO_API_KEY: opts.apiKey } : undefined;
  const headers: Record<string, string> = opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {};
  const dir = mkdtempSync(join(tmpdir(), "exo-cluster-"));
  const config = join(dir, "peers.json");
  const nodes: SpawnedNode[] = [];
  const writePeers = () => {
    const peers = Object.fromEntries(nodes.map((n) => [n.nodeId, { address: "127.0.0.1", port: n.port }]));
    // Write then rename, so a watcher never reads half a file.
    writeFileSync(`${config}.tmp`, JSON.stringify({ peers }));
    renameSync(`${config}.tmp`, config);
  };
  writePeers();
  const spawnOne = async (spec: ClusterNodeSpec) => {
    const args = [
      "--node-id",
      spec.id,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--api-host",
      "127.0.0.1",
      "--api-port",
      "0",
      "--config",
      config,
    ];
    if (spec.memoryMb !== undefined) args.push("--memory-mb", String(spec.memoryMb));
    const nodeEnv = { ...env, ...spec.env };
    const node = await spawnNode({
      args: [...args, ...common, ...(spec.args ?? [])],
      ...(Object.keys(nodeEnv).length > 0 ? { env: nodeEnv } : {}),
    });
    nodes.push(node);
    byId.set(node.nodeId, node);
    writePeers();
    return node;
  };
  const byId = new Map<string, SpawnedNode>();
  for (const spec of specs) await spawnOne(spec);
  const ids = specs.map((s) => s.id).sort();
  for (const n of nodes) {
    let seen = "";
    await waitFor(
      async () => {
        const topo = (await (await fetch(`http://127.0.0.1:${n.apiPort}/topology`, { headers })).json()) as {
          nodes: Record<string, unknown>;
        };
        seen = Object.keys(topo.nodes).sort().join(", ");
        return seen === ids.join(", ");
      },
      { what: `node ${n.nodeId} to see ${ids.join(", ")}`, timeoutMs: 15_000 },
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}; it sees ${seen}\n${nodes.map((m) => `--- ${m.nodeId}\n${m.logs()}`).join("\n")}`,
      );
    });
  }
  return {
    nodes,
    add: spawnOne,
    node: (id) => byId.get(id)!,
    client: (id) =>
      new OpenAI({
        baseURL: `http://127.0.0.1:${byId.get(id)!.apiPort}/v1`,
        apiKey: opts.apiKey ?? "unused",
        maxRetries: 0,
      }),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Request state a node holds right now (GET /debug/state). */
export async function liveRequests(node: SpawnedNode): Promise<LiveRequests> {
  const res = await fetch(`http://127.0.0.1:${node.apiPort}/debug/state`);
  return ((await res.json()) as { live_requests: LiveRequests }).live_requests;
}

/** Wait until none of `nodes` holds any state of any request. */
export async function waitNoRequestState(nodes: SpawnedNode[], timeoutMs = 5000): Promise<void> {
  await waitFor(
    async () => {
      for (const n of nodes) {
        const live = await liveRequests(n);
        if ((live.queued ?? 0) + live.coordinating + live.stages + live.engine !== 0) return false;
      }
      return true;
    },
    { what: `no request state on ${nodes.map((n) => n.nodeId).join(", ")}`, timeoutMs },
  );
}
