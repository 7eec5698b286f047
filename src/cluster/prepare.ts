// PREPARE on a stage node: fetch the files of this node's layers, load them into the engine, and broadcast
// progress as STATUS. Concurrent PREPAREs for the same shard share one job; an already loaded shard answers at once.
import { NodeError } from "../errors.ts";
import type { ModelId } from "../ids.ts";
import { logger } from "../log.ts";
import type { ModelInfo } from "./types.ts";
import type { ShardEngine } from "../engine/types.ts";
import type { PeerTransport } from "../net/transport.ts";
import type { LayerRange } from "../topology/types.ts";
import type { Plan, StatusFields } from "./messages.ts";

const log = logger("cluster");
const STATUS_EVERY_MS = 250;

/** Files of a model's layer range on this node (downloaded when missing) → the local directory. An empty range asks for config and tokenizer only. */
export type EnsureShardFiles = (
  model: ModelInfo,
  range: LayerRange,
  onProgress: (fraction: number, detail?: string, progress?: Record<string, unknown>) => void,
) => Promise<string>;

/** Sends this node's progress on `modelId` as STATUS to itself and every peer up, throttled per phase. */
export type StatusBroadcast = (
  phase: StatusFields["phase"],
  fraction: number,
  detail?: string,
  progress?: Record<string, unknown>,
) => void;

/**
 * STATUS of this node for one model. Also what peers go by when they serve it files: a node reports "download"
 * before it asks for any, and a fraction of 1 (or another phase) when it no longer needs them (peer-grants.ts).
 */
export function statusBroadcaster(transport: PeerTransport, modelId: ModelId): StatusBroadcast {
  let lastMs = 0;
  let lastPhase = "";
  let latest: Record<string, unknown> | undefined;
  return (phase, fraction, detail, progress) => {
    // A throttled event's progress still rides on the next one that goes out (e.g. the end of the phase).
    if (progress) latest = progress;
    if (phase !== "download") latest = undefined;
    const now = Date.now();
    // Throttled per phase, but a phase change and the end of a phase always go out.
    if (phase === lastPhase && fraction < 1 && now - lastMs < STATUS_EVERY_MS) return;
    lastMs = now;
    lastPhase = phase;
    const status: StatusFields = {
      nodeId: transport.selfId,
      modelId,
      phase,
      fraction,
      ...(detail ? { detail } : {}),
      ...(latest ? { progress: latest } : {}),
    };
    for (const peer of [transport.selfId, ...transport.peersUp()]) {
      transport.send(peer, "STATUS", { ...status }).catch(() => log.debug(`STATUS to ${peer} not delivered`));
    }
  };
}

export interface ShardPreparer {
  /** Make this node's stage of `plan` ready; resolves when the engine holds it. */
  prepare(plan: Plan): Promise<void>;
  /** True while a prepare job runs here (its STATUS frames report that phase). */
  preparing(): boolean;
}

export function createShardPreparer(opts: {
  transport: PeerTransport;
  engine: ShardEngine;
  models: {
    resolveModel(modelId: string): Promise<ModelInfo>;
    ensureShardFiles: EnsureShardFiles;
  };
}): ShardPreparer {
  const { transport, engine } = opts;
  const self = transport.selfId;
  const jobs = new Map<string, Promise<void>>();

  async function run(plan: Plan, { layerStart, layerEnd }: LayerRange): Promise<void> {
    // Said before anything is fetched (resolving a hub repo fetches its config): peers serve this node the
    // files of a model only while it reports downloading it (download/peer-grants.ts).
    const status = statusBroadcaster(transport, plan.modelId);
    status("download", 0);
    const model = await opts.models.resolveModel(plan.modelId);
    const modelDir = await opts.models.ensureShardFiles(model, { layerStart, layerEnd }, (f, d, p) =>
      status("download", f, d, p),
    );
    status("download", 1);
    status("load", 0);
    await engine.load({ modelId: plan.modelId, modelDir, layerStart, layerEnd, nLayers: plan.nLayers }, (f, d) =>
      status("load", f, d),
    );
    status("ready", 1);
    log.info(`loaded ${plan.modelId} layers [${layerStart},${layerEnd}) of ${plan.nLayers}`);
  }

  return {
    prepare(plan) {
      const stage = plan.stages.find((s) => s.nodeId === self);
      if (!stage)
        return Promise.reject(
          new NodeError("E_INTERNAL", `node ${self} is not a stage of the plan for ${plan.modelId}`),
        );
      const loaded = engine.loaded();
      if (
        loaded &&
        loaded.modelId === plan.modelId &&
        loaded.layerStart === stage.layerStart &&
        loaded.layerEnd === stage.layerEnd &&
        !jobs.size
      ) {
        return Promise.resolve();
      }
      const key = `${plan.modelId}:${stage.layerStart}:${stage.layerEnd}:${plan.nLayers}`;
      let job = jobs.get(key);
      if (!job) {
        job = run(plan, stage).finally(() => jobs.delete(key));
        jobs.set(key, job);
      }
      return job;
    },
    preparing: () => jobs.size > 0,
  };
}
