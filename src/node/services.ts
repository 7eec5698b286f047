// The one place where a node plugs in its inference and model services for the HTTP API.
// Placeholders until the cluster (engineer H) and downloads (engineer F) wire theirs in here.
import type { InferenceService, ModelStore } from "../api/deps.ts";
import { NodeError } from "../errors.ts";
import type { ExoNodeCore } from "./node.ts";

export interface NodeServices {
  inference: InferenceService;
  models: ModelStore;
  /** Release whatever the services hold (runner processes, downloads). */
  stop(): Promise<void>;
}

function notWired(what: string): never {
  throw new NodeError("E_PEER_DOWN", `${what} is not available on this node yet (placeholder in src/node/services.ts)`);
}

/** Build the services for a node whose links and topology are up. */
export async function createNodeServices(_node: ExoNodeCore): Promise<NodeServices> {
  return {
    inference: {
      listModels: () => [],
      generate: () => notWired("inference"),
    },
    models: {
      modelPool: async () => notWired("the model pool"),
      downloadProgress: () => ({}),
      startDownload: async () => notWired("downloading"),
      deleteModel: async () => notWired("deleting models"),
    },
    stop: async () => {},
  };
}
