// The node's InferenceService: resolve the model, plan it, prepare the stages, tokenize, run the token loop
// across the cluster and stream text. Registers the cluster's message handlers on the transport.
import { NodeError, errorCode } from "../errors.ts";
import { asRequestId, type NodeId } from "../ids.ts";
import { logger } from "../log.ts";
import type {
  ChatMessage,
  GenerateRequest,
  GenerationEvent,
  InferenceService,
  ModelInfo,
  Placement,
  PlacementService,
} from "./types.ts";
import type { ShardEngine } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import { createAdmissionQueue, type AdmissionOptions, type AdmissionStats } from "./admission-queue.ts";
import { fitToWindow } from "./context-fit.ts";
import { createLoadReporter, type LoadReporter } from "./load-report.ts";
import { createCoordinator } from "./coordinator.ts";
import { DEFAULT_FAILOVER_LIMITS, failoverTokens, type FailoverLimits } from "./failover.ts";
import { createModelStates, describePlan, type ModelState } from "./model-states.ts";
import { WakeSet } from "../wake-set.ts";
import { createReplacement } from "./replacement.ts";
import {
  parseError,
  parsePlan,
  parseRequestId,
  parseRoute,
  parseStatus,
  parseToken,
  parseTokens,
  planNodes,
  type Plan,
  type StatusFields,
} from "./messages.ts";
import { createShardPreparer, type EnsureShardFiles } from "./prepare.ts";
import { createStallWatch } from "./prepare-watch.ts";
import { decodeTensor } from "../protocol/tensor.ts";
import { createStageHost } from "./stage.ts";
import { streamText, type Detokenizer } from "./text-stream.ts";

const log = logger("cluster");

/** The slice of a model's tokenizer the coordinator needs. */
export interface ClusterTokenizer {
  /** The chat template rendered with a generation prompt, then encoded (no doubled BOS). */
  encodeChat(messages: ChatMessage[], tools?: unknown[]): number[];
  encode(text: string): number[];
  eosIds: number[];
  createDetokenizer(): Detokenizer;
  /** Longest prompt + answer in tokens (src/models/spec/context-window.ts); undefined when the model's files do not say. */
  contextWindow?: number;
  kvBytesPerToken?: number; // KV-cache bytes a token takes over the whole model (kv-headroom.ts): admission's cost
}

/** How the cluster service finds models, plans them and fetches a stage's files (the node's: node-service.ts). */
export interface ModelResolver {
  /** Models this cluster serves. */
  listModels(): ModelInfo[];
  /** Catalog lookup (or a hub repo, a local directory). @throws E_MODEL_UNKNOWN */
  resolveModel(modelId: string): Promise<ModelInfo>;
  /** Placement over the current membership; stable while membership is unchanged. @throws E_MODEL_TOO_BIG, E_MODEL_UNSUPPORTED */
  planFor(model: ModelInfo): Plan;
  ensureShardFiles: EnsureShardFiles;
}

export interface ClusterServiceDeps {
  transport: PeerTransport;
  engine: ShardEngine;
  models: ModelResolver;
  loadTokenizer(modelDir: string): Promise<ClusterTokenizer>;
  /** Every STATUS this node hears (its own and its peers'), e.g. to keep the cluster's download progress. */
  onStatus?(status: StatusFields): void;
  /** Longest wait for the next token, prefill included (default 300 s). */
  tokenTimeoutMs?: number;
  /** Longest wait for every stage to download and load its shard (default 6 h). */
  prepareTimeoutMs?: number;
  /** Longest a stage may go without prepare progress (a STATUS with a new phase or fraction) before it fails (default 60 s). */
  prepareStallMs?: number;
  /** A stage frees a request idle this long, as a last resort (default 10 min). */
  stageIdleMs?: number;
  /** Memory (MB) of a node, reported with placements. */
  memoryOf?(nodeId: string): number | undefined;
  /** Failover of running requests (issue 17): how many per request and how long one recovery may take. */
  failover?: Partial<FailoverLimits>;
  /** Longest a background re-placement waits for running requests to finish on their plan (default 30 s). */
  drainMs?: number;
  /** Admission of the requests coordinated here (admission-queue.ts): default 32 running, 256 queued, 300 s wait. */
  admission?: Partial<AdmissionOptions>;
}

export type PrepareProgress = (status: StatusFields) => void;

/** Request state held on this node; every count is 0 when nothing is in flight. */
export interface LiveRequests {
  queued: number; // waiting for admission (admission-queue.ts)
  coordinating: number;
  stages: number;
  engine: number;
}

export interface ClusterService extends InferenceService, PlacementService {
  /** Place `modelId` on the cluster and have every stage download and load its shard. @throws E_MODEL_UNKNOWN, E_MODEL_TOO_BIG */
  prepare(modelId: string, onProgress?: PrepareProgress): Promise<Plan>;
  liveRequests(): Promise<LiveRequests>;
  /** Each model's state (ready, degraded, re-placing), for GET /v1/cluster and /debug/state. */
  modelStates(): ModelState[];
  /** The admission queue's figures, this node's load and each peer's last STATUS `load` (GET /debug/state). */
  admission(): AdmissionStats;
  load: Pick<LoadReporter, "local" | "peers">;
  close(): void;
}

/** Bytes with a buffer of their own (a big frame's body already is: payload-assembler.ts): not a pool view. */
function ownBytes(body: Uint8Array): Uint8Array {
  return body.constructor === Uint8Array && body.byteOffset === 0 && body.byteLength === body.buffer.byteLength
    ? body
    : new Uint8Array(body);
}

export function createClusterService(deps: ClusterServiceDeps): ClusterService {
  const { transport, engine, models } = deps;
  const coordinator = createCoordinator({ transport, tokenTimeoutMs: deps.tokenTimeoutMs ?? 300_000 });
  const stages = createStageHost({ transport, engine });
  const preparer = createShardPreparer({ transport, engine, models });
  const admission = createAdmissionQueue({ limit: 32, queueSize: 256, waitMs: 300_000, ...deps.admission });
  const load = createLoadReporter({ transport, engine, admission, preparing: () => preparer.preparing() });
  const prepared = new Map<string, { key: string; plan: Plan; done: Promise<void> }>();
  // Every node's last STATUS per model (stages broadcast them to every peer), and requests coordinated here.
  const statuses = new Map<string, Map<string, StatusFields>>();
  const inFlight = new Map<string, number>();
  const noteStatus = (status: StatusFields) => {
    const byNode = statuses.get(status.modelId) ?? new Map<string, StatusFields>();
    byNode.set(status.nodeId, status);
    statuses.set(status.modelId, byNode);
  };
  const progressListeners = new Map<string, Set<PrepareProgress>>();
  const tokenizers = new Map<string, Promise<ClusterTokenizer>>();
  // --- issue 17: model states, failover and re-placement ---
  const limits: FailoverLimits = { ...DEFAULT_FAILOVER_LIMITS, ...deps.failover };
  const states = createModelStates((line) => log.info(line));
  /** Woken when a model's last running request ends (re-placement waits for that, up to a deadline). */
  const wentIdle = new WakeSet();
  const idle = async (modelId: string, timeoutMs: number) => {
    const until = performance.now() + timeoutMs;
    while (inFlight.get(modelId) && performance.now() < until) await wentIdle.wait(until - performance.now());
  };
  const replacement = createReplacement({
    states,
    resolveModel: (id) => models.resolveModel(id),
    planFor: (model) => models.planFor(model),
    prepare: (plan, reason) => ensurePrepared(plan, undefined, reason),
    idle,
    peersUp: () => transport.peersUp(),
    selfId: transport.selfId,
    drainMs: deps.drainMs ?? 30_000,
  });
  // --- end issue 17 ---

  transport.handle("PREPARE", async (msg) => {
    await preparer.prepare(parsePlan(msg.fields.plan));
    return { type: "OK" };
  });
  transport.handle("STATUS", (msg) => {
    const status = parseStatus(msg.fields);
    load.heard(status);
    noteStatus(status);
    deps.onStatus?.(status);
    for (const l of progressListeners.get(status.modelId) ?? []) l(status);
  });
  transport.handle("PROMPT", (msg) => stages.onPrompt(parseRoute(msg.fields), parseTokens(msg.fields)));
  transport.handle("TENSOR", (msg) =>
    stages.onTensor(parseRoute(msg.fields), { kind: "hidden", tensor: decodeTensor(msg.fields, ownBytes(msg.body)) }),
  );
  transport.handle("TOKEN", (msg) => {
    const t = parseToken(msg.fields);
    coordinator.onToken(t);
    stages.onToken(t.requestId, t.token, t.index);
  });
  transport.handle("END", (msg) => void stages.end(parseRequestId(msg.fields)));
  transport.handle("ERROR", (msg) => coordinator.onError(parseError(msg.fields)));
  transport.handle("UNLOAD", async (msg) => {
    const modelId = typeof msg.fields.modelId === "string" ? msg.fields.modelId : "";
    const holds = engine.loaded()?.modelId === modelId;
    if (holds) await engine.unload();
    prepared.delete(modelId);
    statuses.delete(modelId);
    states.forget(modelId);
    if (holds) log.info(`${modelId} unloaded from this node`);
    return { type: "OK", fields: { unloaded: holds } };
  });

  const unsubscribe = transport.onPeerChange((peer, up) => {
    // Any membership change may move the plan, and a node that came back has lost its shard.
    prepared.clear();
    if (!up) {
      coordinator.onPeerDown(peer);
      stages.onPeerDown(peer);
    }
    replacement.onPeerChange(peer, up);
  });
  const idleMs = deps.stageIdleMs ?? 600_000;
  const sweeper = setInterval(() => stages.sweep(idleMs), Math.min(idleMs, 30_000));
  sweeper.unref?.();

  function ensurePrepared(plan: Plan, onProgress?: PrepareProgress, reason?: string): Promise<void> {
    const key = JSON.stringify(plan);
    const listeners = progressListeners.get(plan.modelId) ?? new Set();
    progressListeners.set(plan.modelId, listeners);
    if (onProgress) listeners.add(onProgress);
    const known = prepared.get(plan.modelId);
    if (known?.key === key) return known.done.finally(() => onProgress && listeners.delete(onProgress));
    const was = states.get(plan.modelId);
    if (was?.state !== "ready" || JSON.stringify(was.plan) !== key)
      states.set(plan.modelId, "re-placing", plan, reason);
    const timeoutMs = deps.prepareTimeoutMs ?? 6 * 3600_000;
    // Each node's answer is its "ready", whether or not its own STATUS frames arrived first.
    const ready = (nodeId: NodeId) => {
      const status: StatusFields = { nodeId, modelId: plan.modelId, phase: "ready", fraction: 1 };
      noteStatus(status);
      for (const l of listeners) l(status);
    };
    // A node that answers health checks but never reports progress fails its prepare after prepareStallMs.
    const stall = createStallWatch(plan.modelId, deps.prepareStallMs ?? 60_000);
    const watchProgress: PrepareProgress = (status) => stall.progress(status);
    listeners.add(watchProgress);
    const ask = (node: NodeId) =>
      Promise.race([
        transport.request(node, "PREPARE", { modelId: plan.modelId, plan }, undefined, { timeoutMs }),
        stall.until(node),
      ]).then(() => {
        stall.done(node);
        ready(node);
      });
    const done: Promise<void> = Promise.all(planNodes(plan).map(ask))
      .then(() => {
        log.info(`${plan.modelId} ready on ${describePlan(plan)}`);
        if (prepared.get(plan.modelId)?.done === done) states.set(plan.modelId, "ready", plan);
      })
      .finally(() => {
        stall.stop();
        listeners.delete(watchProgress);
        if (onProgress) listeners.delete(onProgress);
      });
    prepared.set(plan.modelId, { key, plan, done });
    done.catch((err: unknown) => {
      if (prepared.get(plan.modelId)?.done !== done) return;
      prepared.delete(plan.modelId);
      states.set(plan.modelId, "degraded", plan, err instanceof Error ? err.message : String(err));
    });
    return done;
  }

  function tokenizerFor(model: ModelInfo): Promise<ClusterTokenizer> {
    let t = tokenizers.get(model.id);
    if (!t) {
      t = models
        .ensureShardFiles(model, { layerStart: 0, layerEnd: 0 }, () => {})
        .then((dir) => deps.loadTokenizer(dir));
      tokenizers.set(model.id, t);
      t.catch(() => tokenizers.delete(model.id));
    }
    return t;
  }

  async function* generate(req: GenerateRequest, signal: AbortSignal): AsyncGenerator<GenerationEvent> {
    const model = await models.resolveModel(req.modelId);
    let plan = models.planFor(model);
    // Tokenized and fitted to the context window before the stages prepare: a prompt too long costs nothing.
    const tokenizer = await tokenizerFor(model);
    const tokens = req.messages ? tokenizer.encodeChat(req.messages, req.tools) : tokenizer.encode(req.prompt ?? "");
    if (tokens.length === 0) throw new NodeError("E_TOKENIZER", "the prompt encodes to no tokens");
    const maxTokens = fitToWindow({
      modelId: model.id,
      promptTokens: tokens.length,
      maxTokens: req.maxTokens,
      window: tokenizer.contextWindow,
      what: req.messages ? "messages" : "prompt",
    });
    // FIFO behind the live limit (a full queue: E_CAPACITY, 429); planned again, as membership may move meanwhile.
    const ticket = await admission.acquire(signal, (tokenizer.kvBytesPerToken ?? 0) * (tokens.length + maxTokens));
    try {
      plan = models.planFor(model);
      await ensurePrepared(plan);
      const eosIds = tokenizer.eosIds;
      inFlight.set(plan.modelId, (inFlight.get(plan.modelId) ?? 0) + 1);
      // Each attempt is a request of its own on its plan; a failover replays prompt + streamed tokens (failover.ts).
      const ids = failoverTokens(
        { plan, prompt: tokens, maxTokens },
        {
          run: (a, attemptSignal) => {
            const sampling = a.startIndex > 0 ? { ...req.sampling, startIndex: a.startIndex } : req.sampling;
            const requestId = asRequestId(crypto.randomUUID());
            return coordinator.generateTokens({ ...a, requestId, sampling, eosIds }, attemptSignal);
          },
          replan: (broken, err, deadline) =>
            replacement.replan(model, broken, err, deadline).catch((e: unknown) => {
              states.set(model.id, "degraded", undefined, e instanceof Error ? e.message : String(e));
              throw e;
            }),
          prepare: (p) => ensurePrepared(p, undefined, "failover"),
          onBroken: (broken, err) => {
            log.info(`${model.id}: a request failing over from ${describePlan(broken)}: ${err.message}`);
            if (JSON.stringify(states.get(broken.modelId)?.plan) === JSON.stringify(broken))
              states.set(broken.modelId, "degraded", broken, err.message);
          },
          onRecovered: (r) =>
            log.info(
              `${model.id}: request recovered on ${describePlan(r.to)} (failover ${r.failovers}, ${r.replayed} tokens replayed): re-plan ${r.replanMs.toFixed(0)} ms, load ${r.loadMs.toFixed(0)} ms, replay ${r.replayMs.toFixed(0)} ms`,
            ),
        },
        limits,
        signal,
      );
      try {
        yield* streamText(ids, {
          detokenizer: tokenizer.createDetokenizer(),
          stop: req.stop,
          eosIds,
          maxTokens,
          promptTokens: tokens.length,
        });
      } catch (err) {
        // A stage that failed may have lost its shard (runner restart): prepare again next time.
        if (errorCode(err) !== "E_CANCELLED") prepared.delete(plan.modelId);
        throw err;
      } finally {
        inFlight.set(plan.modelId, (inFlight.get(plan.modelId) ?? 1) - 1);
        if (!inFlight.get(plan.modelId)) wentIdle.wakeAll();
      }
    } finally {
      ticket.release();
    }
  }

  function placements(): Placement[] {
    const placed = states.list().filter((s): s is ModelState & { plan: Plan } => s.plan !== undefined);
    return placed.map(({ plan, state, reason }) => ({
      modelId: plan.modelId,
      nLayers: plan.nLayers,
      state,
      ...(reason && state !== "ready" ? { reason } : {}),
      requestsInFlight: inFlight.get(plan.modelId) ?? 0,
      stages: plan.stages.map((s) => {
        const status = statuses.get(plan.modelId)?.get(s.nodeId);
        const memoryMb = deps.memoryOf?.(s.nodeId);
        return {
          nodeId: s.nodeId,
          layerStart: s.layerStart,
          layerEnd: s.layerEnd,
          ...(memoryMb === undefined ? {} : { memoryMb }),
          ...(status ? { phase: status.phase, fraction: status.fraction } : {}),
        };
      }),
    }));
  }

  async function unload(modelRef: string): Promise<{ modelId: string; nodes: string[] }> {
    const { id: modelId } = await models.resolveModel(modelRef);
    const nodes = [transport.selfId, ...transport.peersUp()];
    const answers = await Promise.all(
      nodes.map((node) =>
        transport
          .request(node, "UNLOAD", { modelId }, undefined, { timeoutMs: 30_000 })
          .then((reply) => (reply.fields.unloaded === true ? node : undefined))
          .catch((err: unknown) => {
            log.warn(`UNLOAD of ${modelId} on ${node} failed: ${String(err)}`);
            return undefined;
          }),
      ),
    );
    return { modelId, nodes: answers.filter((n): n is NodeId => n !== undefined) };
  }

  return {
    listModels: () => models.listModels(),
    generate,
    placements,
    unload,
    async prepare(modelId, onProgress) {
      const plan = models.planFor(await models.resolveModel(modelId));
      await ensurePrepared(plan, onProgress);
      return plan;
    },
    async liveRequests() {
      const queued = admission.stats().queued;
      return { queued, coordinating: coordinator.size(), stages: stages.size(), engine: await engine.liveRequests() };
    },
    modelStates: () => states.list(),
    admission: () => admission.stats(),
    load,
    close() {
      load.stop();
      clearInterval(sweeper);
      replacement.stop();
      unsubscribe();
    },
  };
}
