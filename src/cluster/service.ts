// The node's InferenceService: resolve the model, plan it, prepare the stages, tokenize, run the token loop
// across the cluster and stream text. Registers the cluster's message handlers on the transport.
import { NodeError, errorCode } from "../errors.ts";
import { asRequestId, type NodeId } from "../ids.ts";
import { logger } from "../log.ts";
import type { ChatMessage, GenerateRequest, GenerationEvent, InferenceService, ModelInfo } from "./types.ts";
import type { ShardEngine } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import { fitToWindow } from "./context-fit.ts";
import { createCoordinator } from "./coordinator.ts";
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
}

export type PrepareProgress = (status: StatusFields) => void;

/** Request state held on this node; every count is 0 when nothing is in flight. */
export interface LiveRequests {
  coordinating: number;
  stages: number;
  engine: number;
}

export interface ClusterService extends InferenceService {
  /** Place `modelId` on the cluster and have every stage download and load its shard. @throws E_MODEL_UNKNOWN, E_MODEL_TOO_BIG */
  prepare(modelId: string, onProgress?: PrepareProgress): Promise<Plan>;
  liveRequests(): Promise<LiveRequests>;
  close(): void;
}

/** Bytes with a buffer of their own: a socket's Buffer views share a pool that typed-array readers would misread. */
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
  const prepared = new Map<string, { key: string; done: Promise<void> }>();
  const progressListeners = new Map<string, Set<PrepareProgress>>();
  const tokenizers = new Map<string, Promise<ClusterTokenizer>>();

  transport.handle("PREPARE", async (msg) => {
    await preparer.prepare(parsePlan(msg.fields.plan));
    return { type: "OK" };
  });
  transport.handle("STATUS", (msg) => {
    const status = parseStatus(msg.fields);
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

  const unsubscribe = transport.onPeerChange((peer, up) => {
    // Any membership change may move the plan, and a node that came back has lost its shard.
    prepared.clear();
    if (up) return;
    coordinator.onPeerDown(peer);
    stages.onPeerDown(peer);
  });
  const idleMs = deps.stageIdleMs ?? 600_000;
  const sweeper = setInterval(() => stages.sweep(idleMs), Math.min(idleMs, 30_000));
  sweeper.unref?.();

  function ensurePrepared(plan: Plan, onProgress?: PrepareProgress): Promise<void> {
    const key = JSON.stringify(plan);
    const listeners = progressListeners.get(plan.modelId) ?? new Set();
    progressListeners.set(plan.modelId, listeners);
    if (onProgress) listeners.add(onProgress);
    const known = prepared.get(plan.modelId);
    if (known?.key === key) return known.done.finally(() => onProgress && listeners.delete(onProgress));
    const timeoutMs = deps.prepareTimeoutMs ?? 6 * 3600_000;
    // Each node's answer is its "ready", whether or not its own STATUS frames arrived first.
    const ready = (nodeId: NodeId) => {
      for (const l of listeners) l({ nodeId, modelId: plan.modelId, phase: "ready", fraction: 1 });
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
    const done = Promise.all(planNodes(plan).map(ask))
      .then(() =>
        log.info(
          `${plan.modelId} ready on ${plan.stages.map((s) => `${s.nodeId}[${s.layerStart},${s.layerEnd})`).join(" → ")}`,
        ),
      )
      .finally(() => {
        stall.stop();
        listeners.delete(watchProgress);
        if (onProgress) listeners.delete(onProgress);
      });
    prepared.set(plan.modelId, { key, done });
    done.catch(() => {
      if (prepared.get(plan.modelId)?.done === done) prepared.delete(plan.modelId);
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
    const plan = models.planFor(model);
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
    await ensurePrepared(plan);
    const requestId = asRequestId(crypto.randomUUID());
    const eosIds = tokenizer.eosIds;
    const ids = coordinator.generateTokens(
      { requestId, plan, tokens, sampling: req.sampling, maxTokens, eosIds },
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
    }
  }

  return {
    listModels: () => models.listModels(),
    generate,
    async prepare(modelId, onProgress) {
      const plan = models.planFor(await models.resolveModel(modelId));
      await ensurePrepared(plan, onProgress);
      return plan;
    },
    async liveRequests() {
      return { coordinating: coordinator.size(), stages: stages.size(), engine: await engine.liveRequests() };
    },
    close() {
      clearInterval(sweeper);
      unsubscribe();
    },
  };
}
