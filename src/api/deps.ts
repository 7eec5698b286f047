// What the HTTP API needs from the rest of the node: the inference contract (src/cluster/types.ts), the model
// store (src/download/types.ts) and the debug hooks. Tests drive the API with fakes of these, no port, no MLX.
import type { InferenceService, PlacementService } from "../cluster/types.ts";
import type { ModelStore } from "../download/types.ts";

export interface ApiDeps {
  nodeId: string;
  /** GET /topology body (exo's shape: nodes, peer_graph, active_node_id). */
  topology(): unknown;
  inference: InferenceService;
  models: ModelStore;
  /** When set, every route but /healthcheck requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Placed models and unloading them (`GET /v1/placements`, `exo ps`, `exo stop`, the dashboard); absent: none placed. */
  cluster?: PlacementService;
  /** The node's diagnosis routes under /debug/; each is served only when given. */
  debug?: DebugDeps;
}

/** POST /debug/health-burst's answer: `ok` false (a round trip failed) is a 502. */
export interface HealthBurst {
  ok: boolean;
  body: unknown;
}

export interface DebugDeps {
  /** GET /debug/state: request state held on this node (what tests assert returns to zero). */
  state?(): unknown | Promise<unknown>;
  /** GET /debug/net: the links' counters (dials, local ports, frames, health). */
  net?(): unknown;
  /** POST /debug/health-burst?peer=ID&count=N: N back-to-back HEALTH round trips to a peer. */
  healthBurst?(peer: string, count: number): Promise<HealthBurst>;
}
