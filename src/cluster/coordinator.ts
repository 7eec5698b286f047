// The coordinator side of a request: send PROMPT to stage 0, yield the TOKENs the last stage sends back,
// and whatever ends the request (finish, consumer stops, abort, stage error, peer down, timeout) send END to every stage.
import type { NodeId, RequestId } from "../ids.ts";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { PendingCalls } from "../pending-calls.ts";
import type { SamplingParams } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import {
  planNodes,
  routeFields,
  type ErrorFields,
  type Plan,
  type RouteContext,
  type TokenFields,
} from "./messages.ts";

const log = logger("cluster");

export interface TokenLoopRequest {
  requestId: RequestId;
  plan: Plan;
  tokens: number[];
  sampling: SamplingParams;
  maxTokens: number;
  eosIds: number[];
}

interface Pending {
  plan: Plan;
  /** Tokens received but not yet yielded, keyed by index (links keep order, the key keeps it honest). */
  tokens: Map<number, number>;
  error?: NodeError;
}

export interface Coordinator {
  /** Token ids of one request, in order; ends after EOS or maxTokens. Throws the request's NodeError. */
  generateTokens(req: TokenLoopRequest, signal: AbortSignal): AsyncGenerator<number>;
  onToken(f: TokenFields): void;
  onError(f: ErrorFields): void;
  onPeerDown(peer: NodeId): void;
  /** Requests this node coordinates right now. */
  size(): number;
}

export interface CoordinatorOptions {
  transport: PeerTransport;
  /** Longest wait for the next token (prefill included) before the request fails with E_TIMEOUT. */
  tokenTimeoutMs: number;
}

export function createCoordinator(opts: CoordinatorOptions): Coordinator {
  const { transport, tokenTimeoutMs } = opts;
  const pending = new Map<RequestId, Pending>();
  /** The generator of each request waiting for its next token, with the token deadline. */
  const waits = new PendingCalls<RequestId, void>();

  function fail(requestId: RequestId, p: Pending, err: NodeError): void {
    p.error ??= err;
    waits.resolve(requestId);
  }

  async function nextToken(p: Pending, index: number, requestId: RequestId): Promise<number> {
    for (;;) {
      if (p.error) throw p.error;
      const t = p.tokens.get(index);
      if (t !== undefined) {
        p.tokens.delete(index);
        return t;
      }
      await waits.add(requestId, {
        timeoutMs: tokenTimeoutMs,
        onTimeout: () => {
          fail(requestId, p, new NodeError("E_TIMEOUT", `request ${requestId}: no token for ${tokenTimeoutMs} ms`));
          return undefined;
        },
      });
    }
  }

  function endEverywhere(plan: Plan, requestId: RequestId): void {
    for (const node of planNodes(plan)) {
      transport
        .send(node, "END", { requestId })
        .catch((e) => log.debug(`END ${requestId} → ${node} not delivered: ${String(e)}`));
    }
  }

  async function* generateTokens(req: TokenLoopRequest, signal: AbortSignal): AsyncGenerator<number> {
    const { requestId, plan } = req;
    if (signal.aborted) throw new NodeError("E_CANCELLED", `request ${requestId} was cancelled before it started`);
    const p: Pending = { plan, tokens: new Map() };
    pending.set(requestId, p);
    const onAbort = () => fail(requestId, p, new NodeError("E_CANCELLED", `request ${requestId} was cancelled`));
    signal.addEventListener("abort", onAbort);
    try {
      const route: RouteContext = {
        requestId,
        coordinator: transport.selfId,
        plan,
        sampling: req.sampling,
        maxTokens: req.maxTokens,
        eosIds: req.eosIds,
      };
      await transport.send(plan.stages[0]!.nodeId, "PROMPT", { ...routeFields(route), tokens: req.tokens });
      for (let i = 0; i < req.maxTokens; i++) {
        const token = await nextToken(p, i, requestId);
        yield token;
        if (req.eosIds.includes(token)) return;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      pending.delete(requestId);
      endEverywhere(plan, requestId);
    }
  }

  return {
    generateTokens,
    onToken(f) {
      const p = pending.get(f.requestId);
      if (!p) return;
      p.tokens.set(f.index, f.token);
      waits.resolve(f.requestId);
    },
    onError(f) {
      const p = pending.get(f.requestId);
      if (p) fail(f.requestId, p, new NodeError(f.code, `stage ${f.nodeId}: ${f.message}`));
    },
    onPeerDown(peer) {
      for (const [requestId, p] of pending) {
        if (planNodes(p.plan).includes(peer))
          fail(
            requestId,
            p,
            new NodeError("E_PEER_DOWN", `request ${requestId}: node ${peer}, a stage of its plan, went down`),
          );
      }
    },
    size: () => pending.size,
  };
}
