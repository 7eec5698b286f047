// The stage side of a request: step this node's shard for PROMPT/TENSOR/TOKEN, forward the result along
// the plan, and free the request's routing state and engine state on END, on error or when a plan node goes down.
import type { NodeId, RequestId } from "../ids.ts";
import { NodeError, errorCode } from "../errors.ts";
import { logger } from "../log.ts";
import type { ShardEngine, StageInput, StageOutput } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import { encodeTensor } from "../protocol/tensor.ts";
import { planNodes, routeFields, type RouteContext } from "./messages.ts";
import { createTombstones } from "./tombstones.ts";

const log = logger("cluster");

interface StageState {
  route: RouteContext;
  stageIndex: number;
  /** Steps of one request run one after another; END cancels the step in flight and drops its output. */
  chain: Promise<void>;
  ended: boolean;
  lastActiveMs: number;
  /** Tokens sampled so far (last stage only): the index of the next TOKEN. */
  sampled: number;
}

export interface StageHost {
  /** PROMPT on stage 0: prefill with the prompt tokens. */
  onPrompt(route: RouteContext, tokens: number[]): void;
  /** TENSOR from the previous stage. */
  onTensor(route: RouteContext, input: StageInput): void;
  /** TOKEN from the last stage: stage 0 runs the next step unless the request is finished. */
  onToken(requestId: RequestId, token: number, index: number): void;
  /** END: free everything this node holds for the request (idempotent). */
  end(requestId: RequestId): Promise<void>;
  /** A peer went down: free every request whose plan or coordinator includes it. */
  onPeerDown(peer: NodeId): void;
  /** Free requests idle for longer than `idleMs` (a coordinator that vanished without a link drop). */
  sweep(idleMs: number): void;
  /** Requests with routing state on this node. */
  size(): number;
}

export function createStageHost(opts: { transport: PeerTransport; engine: ShardEngine }): StageHost {
  const { transport, engine } = opts;
  const self = transport.selfId;
  const states = new Map<string, StageState>();
  const ended = createTombstones();

  function stageIndexOf(route: RouteContext): number {
    const i = route.plan.stages.findIndex((s) => s.nodeId === self);
    if (i < 0)
      throw new NodeError("E_INTERNAL", `node ${self} is not a stage of the plan for request ${route.requestId}`);
    return i;
  }

  function checkLoaded(route: RouteContext, i: number): void {
    const stage = route.plan.stages[i]!;
    const shard = engine.loaded();
    if (
      !shard ||
      shard.modelId !== route.plan.modelId ||
      shard.layerStart !== stage.layerStart ||
      shard.layerEnd !== stage.layerEnd
    ) {
      const have = shard ? `${shard.modelId} [${shard.layerStart},${shard.layerEnd})` : "nothing";
      throw new NodeError(
        "E_MODEL_UNSUPPORTED",
        `node ${self} holds ${have}, the plan needs ${route.plan.modelId} [${stage.layerStart},${stage.layerEnd}): prepare the model first`,
      );
    }
  }

  function fail(route: RouteContext, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    log.warn(`request ${route.requestId} failed on ${self}: ${message}`);
    void free(route.requestId);
    // A request, not a one-way frame: links treat an id-less ERROR as a notice about the link itself.
    const fields = { requestId: route.requestId, code: errorCode(err), message, nodeId: self };
    transport
      .request(route.coordinator, "ERROR", fields, undefined, { timeoutMs: 10_000 })
      .catch((e) =>
        log.debug(`could not report the error of ${route.requestId} to ${route.coordinator}: ${String(e)}`),
      );
  }

  async function forward(st: StageState, out: StageOutput): Promise<void> {
    const { route } = st;
    if (out.kind === "hidden") {
      const next = route.plan.stages[st.stageIndex + 1];
      if (!next)
        throw new NodeError("E_INTERNAL", `stage ${st.stageIndex} produced hidden states but is the last stage`);
      const { fields, body } = encodeTensor(out.tensor);
      await transport.send(next.nodeId, "TENSOR", { ...routeFields(route), ...fields }, body);
      return;
    }
    const index = st.sampled++;
    const targets = new Set([route.coordinator, route.plan.stages[0]!.nodeId]);
    await Promise.all(
      [...targets].map((to) => transport.send(to, "TOKEN", { requestId: route.requestId, token: out.token, index })),
    );
  }

  function enqueue(st: StageState, input: StageInput): void {
    st.lastActiveMs = Date.now();
    st.chain = st.chain.then(async () => {
      if (st.ended) return;
      try {
        // The stage count lets a batching engine form one micro-batch per stage (src/engine/batch-loop.ts).
        const hints = { stages: st.route.plan.stages.length };
        const out = await engine.step(st.route.requestId, input, st.route.sampling, hints);
        if (st.ended) return;
        await forward(st, out);
      } catch (err) {
        if (!st.ended) fail(st.route, err);
      }
    });
  }

  function start(route: RouteContext): StageState | undefined {
    if (ended.has(route.requestId)) return undefined;
    const existing = states.get(route.requestId);
    if (existing) return existing;
    try {
      const stageIndex = stageIndexOf(route);
      checkLoaded(route, stageIndex);
      const st: StageState = {
        route,
        stageIndex,
        chain: Promise.resolve(),
        ended: false,
        lastActiveMs: Date.now(),
        sampled: 0,
      };
      states.set(route.requestId, st);
      return st;
    } catch (err) {
      fail(route, err);
      return undefined;
    }
  }

  async function free(requestId: RequestId): Promise<void> {
    ended.add(requestId);
    const st = states.get(requestId);
    if (!st) return;
    states.delete(requestId);
    st.ended = true;
    const endEngine = () =>
      engine.end(requestId).catch((e) => log.warn(`engine.end(${requestId}) failed on ${self}: ${String(e)}`));
    // At once, so a long prefill in flight is cancelled; again once that step settled, in case it left state behind.
    await endEngine();
    await st.chain;
    await endEngine();
  }

  return {
    onPrompt(route, tokens) {
      const st = start(route);
      if (st) enqueue(st, { kind: "tokens", tokens });
    },
    onTensor(route, input) {
      const st = start(route);
      if (st) enqueue(st, input);
    },
    onToken(requestId, token, index) {
      const st = states.get(requestId);
      if (st?.stageIndex !== 0) return;
      const { route } = st;
      if (route.eosIds.includes(token) || index + 1 >= route.maxTokens) return;
      enqueue(st, { kind: "tokens", tokens: [token] });
    },
    end: free,
    onPeerDown(peer) {
      for (const st of [...states.values()]) {
        if (st.route.coordinator === peer || planNodes(st.route.plan).includes(peer)) {
          log.info(`freeing request ${st.route.requestId}: node ${peer} went down`);
          void free(st.route.requestId);
        }
      }
    },
    sweep(idleMs) {
      const now = Date.now();
      for (const st of [...states.values()]) if (now - st.lastActiveMs > idleMs) void free(st.route.requestId);
      ended.prune();
    },
    size: () => states.size,
  };
}
