// Re-placement: when a node joins or leaves, every model placed from this node is planned again in the background
// for new requests, and a request whose plan broke asks here for a plan on the nodes still up. Running requests on a
// plan that still works finish on it first (a stage holds one shard, so loading the new plan would cut them).
import { type NodeError, errorCode } from "../errors.ts";
import type { NodeId } from "../ids.ts";
import { logger } from "../log.ts";
import { planNodes, type Plan } from "./messages.ts";
import { describePlan, type ModelStates } from "./model-states.ts";
import type { ModelInfo } from "./types.ts";
import { WakeSet } from "../wake-set.ts";

const log = logger("cluster");

/** Membership changes arriving within this window are planned for once (a node's links come up together). */
const SETTLE_MS = 200;
/** How long a failover waits for the membership to move when its plan looks intact (a stage saw the loss first). */
const MEMBERSHIP_WAIT_MS = 2000;

export interface ReplacementDeps {
  states: ModelStates;
  resolveModel(modelId: string): Promise<ModelInfo>;
  /** @throws E_MODEL_TOO_BIG, E_MODEL_UNSUPPORTED */
  planFor(model: ModelInfo): Plan;
  /** Every stage of `plan` loaded (sets the model's state). */
  prepare(plan: Plan, reason: string): Promise<void>;
  /** Resolves once this node coordinates no request of `modelId`, or after `timeoutMs`. */
  idle(modelId: string, timeoutMs: number): Promise<void>;
  peersUp(): NodeId[];
  selfId: NodeId;
  /** Longest a background re-placement waits for running requests to finish on their plan. */
  drainMs: number;
}

export interface Replacement {
  /** A peer went up or down: mark broken plans degraded, then re-place every known model in the background. */
  onPeerChange(peer: NodeId, up: boolean): void;
  /** A plan for a request whose plan `broken` failed with `error`, over the nodes up by then. */
  replan(model: ModelInfo, broken: Plan, error: NodeError, deadlineMs: number): Promise<Plan>;
  stop(): void;
}

export function createReplacement(deps: ReplacementDeps): Replacement {
  const { states } = deps;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reasons: string[] = [];
  const membershipMoved = new WakeSet();
  let running = Promise.resolve();

  const isUp = (node: NodeId) => node === deps.selfId || deps.peersUp().includes(node);

  async function replace(modelId: string, reason: string): Promise<void> {
    const model = await deps.resolveModel(modelId);
    let plan: Plan;
    try {
      plan = deps.planFor(model);
    } catch (err) {
      states.set(modelId, "degraded", undefined, err instanceof Error ? err.message : String(err));
      return;
    }
    const current = states.get(modelId);
    const same = current?.plan !== undefined && JSON.stringify(current.plan) === JSON.stringify(plan);
    if (current?.state === "ready" && same) return;
    // Requests running on a plan whose nodes are all up finish there before its stages load another shard.
    if (current?.plan && planNodes(current.plan).every(isUp)) await deps.idle(modelId, deps.drainMs);
    await deps.prepare(plan, reason);
  }

  function schedule(reason: string): void {
    reasons.push(reason);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const why = reasons.splice(0).join(", ");
      const models = states.list().map((s) => s.modelId);
      running = running.then(async () => {
        for (const modelId of models) {
          await replace(modelId, why).catch((err: unknown) => {
            log.warn(`re-placing ${modelId} failed: ${err instanceof Error ? err.message : String(err)}`);
            if (states.get(modelId)?.state !== "ready") states.set(modelId, "degraded", undefined, errorText(err));
          });
        }
      });
    }, SETTLE_MS);
  }

  return {
    onPeerChange(peer, up) {
      membershipMoved.wakeAll();
      if (!up) {
        for (const s of states.list()) {
          if (s.plan && s.state !== "degraded" && planNodes(s.plan).includes(peer))
            states.set(s.modelId, "degraded", s.plan, `node ${peer} went down`);
        }
      }
      if (states.list().length > 0) schedule(up ? `node ${peer} joined` : `node ${peer} left`);
    },
    async replan(model, broken, error, deadlineMs) {
      let plan = deps.planFor(model);
      const lost = errorCode(error) === "E_PEER_DOWN" || errorCode(error) === "E_PEER_TIMEOUT";
      if (lost && JSON.stringify(plan) === JSON.stringify(broken) && planNodes(broken).every(isUp)) {
        // A stage saw the loss before this node did: give the membership a moment to catch up.
        const ms = Math.max(0, Math.min(MEMBERSHIP_WAIT_MS, deadlineMs - performance.now()));
        await membershipMoved.wait(ms);
        plan = deps.planFor(model);
      }
      log.info(`${model.id}: new plan ${describePlan(plan)} after: ${error.message}`);
      return plan;
    },
    stop() {
      clearTimeout(timer);
      membershipMoved.wakeAll();
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
