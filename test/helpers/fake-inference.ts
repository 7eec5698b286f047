// A scripted InferenceService and ModelStore for API tests: text pieces, delays, errors, and a record of every
// call (the request and its AbortSignal, and how the generation ended).
import { asModelId } from "../../src/ids.ts";
import { NodeError } from "../../src/errors.ts";
import type { ApiDeps } from "../../src/api/deps.ts";
import type { GenerateRequest, GenerationEvent, InferenceService, ModelInfo } from "../../src/cluster/types.ts";
import type { ModelStore } from "../../src/download/types.ts";

export interface Script {
  /** Text pieces, one per "token"; the fake stops early at maxTokens and reports finish_reason "length". */
  pieces: string[];
  promptTokens?: number;
  /** Wait before the first piece (a long prefill) and between pieces. */
  firstDelayMs?: number;
  delayMs?: number;
  /** Thrown from generate() before anything is yielded. */
  failAtStart?: NodeError;
  /** Thrown after this many pieces. */
  failAfter?: { pieces: number; error: NodeError };
}

export interface Call {
  request: GenerateRequest;
  signal: AbortSignal;
  /** Settles when the generation stops: "done", "aborted" or "failed". */
  ended: Promise<"done" | "aborted" | "failed">;
}

export const FAKE_MODELS: ModelInfo[] = [
  { id: asModelId("tiny-chat"), name: "Tiny Chat", layers: 4, repo: "local/tiny-chat" },
  { id: asModelId("llama-3.2-1b"), name: "Llama 3.2 1B", layers: 16, repo: "mlx-community/Llama-3.2-1B-Instruct-4bit" },
];

/** The default script: echo the last user message word by word. */
export function echoScript(req: GenerateRequest): Script {
  const last = req.messages?.at(-1)?.content ?? req.prompt ?? "";
  return { pieces: `You said: ${last}`.split(/(?= )/), promptTokens: last.split(" ").length + 3 };
}

export function createFakeInference(script: (req: GenerateRequest) => Script = echoScript) {
  const calls: Call[] = [];
  const service: InferenceService = {
    listModels: () => FAKE_MODELS,
    generate(request, signal) {
      // Like the cluster service: an unknown model fails before the first event.
      const known = FAKE_MODELS.some((m) => m.id === request.modelId);
      const s = known
        ? script(request)
        : { pieces: [], failAtStart: new NodeError("E_MODEL_UNKNOWN", `unknown model "${request.modelId}"`) };
      let settle!: (how: "done" | "aborted" | "failed") => void;
      calls.push({ request, signal, ended: new Promise((resolve) => (settle = resolve)) });
      return run(request, s, signal, settle);
    },
  };
  return { service, calls };
}

async function* run(
  req: GenerateRequest,
  s: Script,
  signal: AbortSignal,
  settle: (how: "done" | "aborted" | "failed") => void,
): AsyncGenerator<GenerationEvent> {
  try {
    if (s.failAtStart) throw s.failAtStart;
    const limit = Math.min(s.pieces.length, req.maxTokens);
    for (let i = 0; i < limit; i++) {
      await abortableDelay(i === 0 ? (s.firstDelayMs ?? 0) : (s.delayMs ?? 0), signal);
      if (s.failAfter && i === s.failAfter.pieces) throw s.failAfter.error;
      yield { kind: "text", text: s.pieces[i]! };
    }
    yield {
      kind: "done",
      finishReason: limit < s.pieces.length ? "length" : "stop",
      usage: { promptTokens: s.promptTokens ?? 1, completionTokens: limit },
    };
  } catch (err) {
    settle(signal.aborted ? "aborted" : "failed");
    throw err;
  } finally {
    // Also runs when the consumer stops early (return()); the first settle wins.
    settle(signal.aborted ? "aborted" : "done");
  }
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new NodeError("E_CANCELLED", "aborted"));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new NodeError("E_CANCELLED", "aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** A ModelStore that records what it was asked. */
export function createFakeModelStore() {
  const started: string[] = [];
  const known = new Set<string>(FAKE_MODELS.map((m) => m.id));
  const onDisk = new Set(["tiny-chat"]);
  const unknown = (id: string) => new NodeError("E_MODEL_UNKNOWN", `model "${id}" is not in the catalog`);
  const store: ModelStore = {
    modelPool: async () =>
      Object.fromEntries(
        FAKE_MODELS.map((m) => [
          m.id,
          { downloaded: onDisk.has(m.id), download_percentage: onDisk.has(m.id) ? 100 : 0 },
        ]),
      ),
    downloadProgress: () => ({ "node-a": { repo_id: "local/tiny-chat", status: "in_progress", downloaded_bytes: 5 } }),
    startDownload: async (id) => {
      if (!known.has(id)) throw unknown(id);
      started.push(id);
    },
    deleteModel: async (id) => {
      if (!known.has(id)) throw unknown(id);
      return { deleted: onDisk.delete(id) };
    },
  };
  return { store, started };
}

/** ApiDeps with the fakes; `script` decides each generation, `overrides` replace any field. */
export function fakeDeps(script?: (req: GenerateRequest) => Script, overrides: Partial<ApiDeps> = {}) {
  const inference = createFakeInference(script);
  const models = createFakeModelStore();
  const deps: ApiDeps = {
    nodeId: "node-a",
    topology: () => ({
      nodes: { "node-a": { model: "test", chip: "cpu", memory: 1024 } },
      peer_graph: {},
      active_node_id: "node-a",
    }),
    inference: inference.service,
    models: models.store,
    ...overrides,
  };
  return { deps, calls: inference.calls, started: models.started };
}
