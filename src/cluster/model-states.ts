// The state of each model placed on the cluster, as users see it (GET /v1/cluster, GET /v1/placements, `exo ps`,
// the dashboard): `ready` (its plan is loaded and every node of it is up), `degraded` (a node of its plan went
// down, or the nodes up cannot hold it) and `re-placing` (a new plan is loading). Each change is logged once.
import type { Plan } from "./messages.ts";

export type ModelStateName = "ready" | "degraded" | "re-placing";

export interface ModelState {
  modelId: string;
  state: ModelStateName;
  /** Ready: the plan in force; re-placing: the plan loading; degraded: the broken plan (absent when none fits). */
  plan?: Plan;
  /** Why it is degraded or re-placing (a node went down, a node joined, the error of the last attempt). */
  reason?: string;
  /** When it entered this state (ms since the epoch). */
  sinceMs: number;
}

export interface ModelStates {
  /** Enter `state`; a repeat of the current state and plan changes nothing (and logs nothing). */
  set(modelId: string, state: ModelStateName, plan: Plan | undefined, reason?: string): void;
  get(modelId: string): ModelState | undefined;
  list(): ModelState[];
  forget(modelId: string): void;
}

/** One line per plan: `a[0,2) → b[2,4)`. */
export function describePlan(plan: Plan): string {
  return plan.stages.map((s) => `${s.nodeId}[${s.layerStart},${s.layerEnd})`).join(" → ");
}

export function createModelStates(onChange: (line: string, state: ModelState) => void): ModelStates {
  const states = new Map<string, ModelState>();
  return {
    set(modelId, state, plan, reason) {
      const prev = states.get(modelId);
      const samePlan = (prev?.plan && JSON.stringify(prev.plan)) === (plan && JSON.stringify(plan));
      if (prev?.state === state && samePlan) return;
      // A degraded model keeps showing the plan that broke until a new one is chosen.
      const shown = plan ?? (state === "degraded" ? prev?.plan : undefined);
      const next: ModelState = {
        modelId,
        state,
        ...(shown ? { plan: shown } : {}),
        ...(reason ? { reason } : {}),
        sinceMs: Date.now(),
      };
      states.set(modelId, next);
      const where = plan ? ` on ${describePlan(plan)}` : "";
      onChange(
        `model ${modelId}: ${prev ? `${prev.state} → ` : ""}${state}${where}${reason ? ` (${reason})` : ""}`,
        next,
      );
    },
    get: (modelId) => states.get(modelId),
    list: () => [...states.values()],
    forget(modelId) {
      states.delete(modelId);
    },
  };
}
