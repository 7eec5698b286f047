// The one place where a node plugs in its inference and model services for the HTTP API:
// the cluster service (src/cluster) over this node's engine, and the download store (src/download).
import type { InferenceService, ModelStore } from "../api/deps.ts";
import { createNodeClusterService } from "../cluster/node-service.ts";
import { createDefaultModelStore } from "../download/model-store.ts";
import { createFakeEngine } from "../engine/fake-engine.ts";
import type { ShardEngine } from "../engine/types.ts";
import { configEosIds, configVocabSize } from "../models/spec/describe.ts";
import { readConfigFileIfAny } from "../models/spec/config-file.ts";
import type { ExoNodeCore } from "./node.ts";

export interface NodeServices {
  inference: InferenceService;
  models: ModelStore;
  /** GET /debug/state: request state held on this node (tests assert it returns to zero). */
  debugState?: () => Promise<unknown>;
  /** Release whatever the services hold (runner processes, downloads). */
  stop(): Promise<void>;
}

/** The fake engine sized to each loaded model's vocabulary; it never samples EOS, so requests run to max_tokens. */
function createModelSizedFakeEngine(stepDelayMs: number): ShardEngine {
  let inner = createFakeEngine({ stepDelayMs });
  return {
    async load(spec, onProgress) {
      const config = await readConfigFileIfAny(spec.modelDir);
      const eos = configEosIds(config)[0];
      await inner.close();
      const vocabSize = configVocabSize(config) ?? 256;
      inner = createFakeEngine({ stepDelayMs, vocabSize, ...(typeof eos === "number" ? { eosToken: eos } : {}) });
      return inner.load(spec, onProgress);
    },
    loaded: () => inner.loaded(),
    step: (requestId, input, sampling) => inner.step(requestId, input, sampling),
    end: (requestId) => inner.end(requestId),
    liveRequests: () => inner.liveRequests(),
    close: () => inner.close(),
  };
}

/** The MLX runner child by default; `--engine fake` runs the no-MLX fake in-process (network tests). */
async function createEngine(node: ExoNodeCore): Promise<ShardEngine> {
  if (node.options.engine === "fake") return createModelSizedFakeEngine(node.options.fakeStepMs);
  const { createRunnerEngine } = await import("../engine/runner-client.ts");
  return createRunnerEngine({ engine: "mlx" });
}

/** Build the services for a node whose links and topology are up. */
export async function createNodeServices(node: ExoNodeCore): Promise<NodeServices> {
  const models = await createDefaultModelStore({ nodeId: node.nodeId, modelsDir: node.options.modelsDir });
  const engine = await createEngine(node);
  const inference = await createNodeClusterService({
    transport: node.transport,
    engine,
    memoryOf: (id) => node.memoryOf(id),
    runsOnMetal: (id) => /^apple/i.test(node.capabilitiesOf(id)?.chip ?? ""),
    store: models,
    models: node.options.models,
  });
  return {
    inference,
    models,
    debugState: async () => ({ node_id: node.nodeId, live_requests: await inference.liveRequests() }),
    stop: async () => {
      inference.close();
      await engine.close();
    },
  };
}
