// The one place where a node plugs in its inference and model services for the HTTP API:
// the cluster service (src/cluster) over this node's engine, and the download store (src/download).
import { createNodeClusterService } from "../cluster/node-service.ts";
import { createDefaultModelStore, type DownloadWatch, type NodeModelStore } from "../download/model-store.ts";
import { toExoProgress } from "../download/progress.ts";
import { asModelId } from "../ids.ts";
import { statusBroadcaster } from "../cluster/prepare.ts";
import { createModelSizedFakeEngine } from "../engine/model-sized-fake-engine.ts";
import type { ShardEngine } from "../engine/types.ts";
import { debugLoadState } from "./debug.ts";
import type { ExoNodeCore, NodeServices } from "./types.ts";

/** The MLX runner child by default; `--engine fake` runs the no-MLX fake in-process (network tests). */
async function createEngine(node: ExoNodeCore): Promise<ShardEngine> {
  const { fakeStepMs, maxLive } = node.options;
  if (node.options.engine === "fake") return createModelSizedFakeEngine(fakeStepMs, maxLive);
  const { createRunnerEngine } = await import("../engine/runner-client.ts");
  const { maxBatch } = node.options;
  return createRunnerEngine({
    engine: "mlx",
    maxLiveRequests: maxLive,
    ...(maxBatch === undefined ? {} : { maxBatch }),
  });
}

/**
 * POST /download as a prepare does it: STATUS "download" to every peer before any file is asked for (so peers
 * that hold the model serve it, download/peer-grants.ts), progress as it comes, and the end (fraction 1).
 */
async function downloadTellingPeers(node: ExoNodeCore, models: NodeModelStore, modelId: string): Promise<void> {
  const status = statusBroadcaster(node.transport, asModelId(modelId));
  status("download", 0);
  const watch: DownloadWatch = {
    progress: (p) =>
      status("download", p.totalBytes > 0 ? p.downloadedBytes / p.totalBytes : 0, undefined, toExoProgress(p)),
    ended: (error) => status("download", 1, error ? `failed: ${error.message}` : undefined),
  };
  try {
    await models.startDownload(modelId, watch);
  } catch (err) {
    watch.ended(err as Error);
    throw err;
  }
}

/** Build the services for a node whose links and topology are up. */
export async function createNodeServices(node: ExoNodeCore): Promise<NodeServices> {
  const models = await createDefaultModelStore({
    nodeId: node.nodeId,
    modelsDir: node.options.modelsDir,
    transport: node.transport,
  });
  const engine = await createEngine(node);
  const inference = await createNodeClusterService({
    transport: node.transport,
    engine,
    memoryOf: (id) => node.memoryOf(id),
    runsOnMetal: (id) => /^apple/i.test(node.capabilitiesOf(id)?.chip ?? ""),
    store: models,
    models: node.options.models,
    prepareStallMs: node.options.prepareStallMs,
    failover: { maxFailovers: node.options.maxFailovers, recoveryMs: node.options.recoveryMs },
    drainMs: node.options.drainMs,
    admission: {
      limit: node.options.maxLive,
      queueSize: node.options.queueSize,
      ...(node.options.kvCacheMb === undefined ? {} : { budget: node.options.kvCacheMb * 1024 * 1024 }),
    },
  });
  return {
    inference,
    models: { ...models, startDownload: (modelId) => downloadTellingPeers(node, models, modelId) },
    debugState: async () => ({
      node_id: node.nodeId,
      live_requests: await inference.liveRequests(),
      models: inference.modelStates(),
      ...(await debugLoadState(inference)),
    }),
    stop: async () => {
      inference.close();
      await engine.close();
    },
  };
}
