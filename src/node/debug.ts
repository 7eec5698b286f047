// What the node's debug routes report, for `exo doctor` and the integration tests. The API serves them
// (src/api/app.ts: /debug/*, behind the API key like every route but /healthcheck): the pool's counters with
// this node's links, and N back-to-back HEALTH round trips to a peer over the usual link.
import type { DebugDeps, HealthBurst } from "../api/deps.ts";
import type { ClusterService } from "../cluster/service.ts";
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

/**
 * GET /debug/state's load figures: this node's admission queue, its engine's decode batches (null when the engine
 * does not batch) and the load each peer last reported in STATUS.
 */
export async function debugLoadState(service: ClusterService): Promise<Record<string, unknown>> {
  const a = service.admission();
  const local = await service.load.local();
  const peers = service.load.peers();
  return {
    admission: {
      running: a.running,
      queued: a.queued,
      peak_queued: a.peakQueued,
      limit: a.limit,
      queue_size: a.queueSize,
      refused: a.refused,
      ...(a.budget === undefined ? {} : { kv_reserved_bytes: a.reserved ?? 0, kv_budget_bytes: a.budget }),
    },
    batch: local.lastBatch === undefined ? null : { last: local.lastBatch, peak: local.peakBatch ?? 0 },
    peers_load: Object.fromEntries(
      Object.entries(peers).map(([id, p]) => [
        id,
        {
          queued: p.queued,
          running: p.running,
          ...(p.lastBatch === undefined ? {} : { last_batch: p.lastBatch, peak_batch: p.peakBatch ?? 0 }),
          age_ms: p.ageMs,
        },
      ]),
    ),
  };
}
