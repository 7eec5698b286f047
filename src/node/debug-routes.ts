// Debug routes for `exo doctor` and the integration tests, behind the API key like every route but /healthcheck:
// GET /debug/net (the pool's counters: dials, links with local ports, frames, health) and
// POST /debug/health-burst?peer=ID&count=N (N back-to-back HEALTH round trips over the usual link).
import type { App } from "../api/app.ts";
import { hasApiKey } from "../api/auth.ts";
import { errorCode } from "../errors.ts";
import type { ExoNodeCore } from "./node.ts";

const MAX_BURST = 1000;

async function healthBurst(node: ExoNodeCore, peer: string, count: number): Promise<Response> {
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
    return Response.json(
      { peer, ok: false, code: errorCode(err), message, latencies_ms: latenciesMs },
      { status: 502 },
    );
  }
  const after = node.pool.stats().peers.find((p) => p.nodeId === peer);
  return Response.json({ peer, ok: true, latencies_ms: latenciesMs, before, after });
}

/** Wrap the API app so /debug/net and /debug/health-burst answer before the app's routes. */
export function withDebugRoutes(app: App, node: ExoNodeCore, apiKey: string | undefined): App {
  return async (req) => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname}`;
    if (route !== "GET /debug/net" && route !== "POST /debug/health-burst") return app(req);
    if (!hasApiKey(req, apiKey)) return app(req); // the app answers 401, through the same check
    if (route === "GET /debug/net") {
      return Response.json({ ...node.pool.stats(), port: node.port, links: node.topology.localView().links });
    }
    const peer = url.searchParams.get("peer") ?? "";
    const count = Math.min(MAX_BURST, Math.max(1, Number(url.searchParams.get("count") ?? 10) || 10));
    return healthBurst(node, peer, count);
  };
}
