// exo's placement routes: GET /v1/placements (each placed model, every node's layers, memory and progress,
// requests in flight) and DELETE /v1/placements/{model} (unload it on every node). `exo ps`, `exo stop` and
// the dashboard read these. GET /v1/cluster is the same per model, under `models`, with the node's id.
import type { Placement } from "../cluster/types.ts";
import { NodeError } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";

/** A placement in the API's snake_case. */
export function placementJson(p: Placement) {
  return {
    model: p.modelId,
    n_layers: p.nLayers,
    state: p.state,
    reason: p.reason ?? null,
    requests_in_flight: p.requestsInFlight,
    stages: p.stages.map((s) => ({
      node_id: s.nodeId,
      layer_start: s.layerStart,
      layer_end: s.layerEnd,
      memory_mb: s.memoryMb ?? null,
      phase: s.phase ?? null,
      fraction: s.fraction ?? null,
    })),
  };
}

/** GET /v1/placements. */
export function listPlacements(deps: ApiDeps): Response {
  return Response.json({ placements: (deps.cluster?.placements() ?? []).map(placementJson) });
}

/** GET /v1/cluster: this node and the state of every model placed from it (ready, degraded, re-placing). */
export function clusterState(deps: ApiDeps): Response {
  return Response.json({ node_id: deps.nodeId, models: (deps.cluster?.placements() ?? []).map(placementJson) });
}

/** DELETE /v1/placements/{model}: 404 when no node held it. @throws E_MODEL_UNKNOWN, E_NOT_FOUND */
export async function unloadPlacement(deps: ApiDeps, model: string): Promise<Response> {
  if (!deps.cluster) throw new NodeError("E_NOT_FOUND", "this node places no models");
  const { modelId, nodes } = await deps.cluster.unload(model);
  if (nodes.length === 0) throw new NodeError("E_NOT_FOUND", `model ${modelId} is not loaded on any node`);
  return Response.json({ model: modelId, unloaded_from: nodes });
}
