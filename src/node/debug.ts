// What the node's debug routes report, for `exo doctor` and the integration tests. The API serves them
// (src/api/app.ts: /debug/*, behind the API key like every route but /healthcheck): the pool's counters with
// this node's links, and N back-to-back HEALTH round trips to a peer over the usual link.
import type { DebugDeps, HealthBurst } from "../api/deps.ts";
import { errorCode } from "../errors.ts";
import type { ExoNodeCore } from "./types.ts";

/** The debug side of a node: GET /debug/net, POST /debug/health-burst, and `state` for GET /debug/state. */
export function nodeDebug(node: ExoNodeCore, state?: () => Promise<unknown>): DebugDeps {
  return {
    ...(state ? { state } : {}),
    net: () => ({ ...node.pool.stats(), port: node.port, links: node.topology.localView().links }),
    healthBurst: (peer, count) => healthBurst(node, peer, count),
  };
}

// --- internal ---

async function healthBurst(node: ExoNodeCore, peer: string, count: number): Promise<HealthBurst> {
  const before = node.pool.stats().peers.find((p) => p.nodeId === peer);
  const latenciesMs: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await node.pool.request(peer, "HEALTH");
      latenciesMs.push(performance.now() - t0);
    }
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, body: { peer, ok: false, code: errorCode(err), message, latencies_ms: latenciesMs } };
  }
  const after = node.pool.stats().peers.find((p) => p.nodeId === peer);
  return { ok: true, body: { peer, ok: true, latencies_ms: latenciesMs, before, after } };
}
