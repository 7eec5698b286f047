// What the HTTP API needs from the rest of the node. The API imports only these interfaces,
// so tests drive it in-process with fakes (app.fetch(new Request(...))), no port, no MLX.
import type { SamplingParams } from "../engine/types.ts";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  [extra: string]: unknown;
}

/** A validated generation request, in the node's own terms (the API translates OpenAI → this). */
export interface GenerateRequest {
  modelId: string;
  /** Chat requests carry messages (rendered with the model's chat template) ... */
  messages?: ChatMessage[];
  /** ... plain completions carry a prompt string. */
  prompt?: string;
  tools?: unknown[];
  sampling: SamplingParams;
  maxTokens: number;
  /** Stop strings: generation ends before the first occurrence, which is not returned. */
  stop: string[];
}

export type FinishReason = "stop" | "length";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** The stream a generation yields: text deltas (never special tokens, never a broken UTF-8 char), then one `done`. */
export type GenerationEvent =
  | { kind: "text"; text: string }
  | { kind: "done"; finishReason: FinishReason; usage: Usage };

export interface ModelInfo {
  id: string;
  name: string;
  layers: number;
  /** Hugging Face repo (or local path) the weights come from. */
  repo: string;
}

export interface InferenceService {
  /** Models this cluster can serve (the catalog plus local ones). */
  listModels(): ModelInfo[];
  /**
   * Generate for one request. Throws NodeError E_MODEL_UNKNOWN (404), E_MODEL_TOO_BIG (503),
   * E_CAPACITY (429), E_PEER_DOWN / E_RUNNER_CRASHED (503) before or during the stream.
   * Aborting `signal` ends the request and frees its state on every stage.
   */
  generate(req: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerationEvent>;
}

/** Download state of one model on this node, in exo's /modelpool and progress shapes. */
export interface ModelStore {
  /** exo's GET /modelpool body. */
  modelPool(): Promise<unknown>;
  /** exo's GET /v1/download/progress body. */
  downloadProgress(): unknown;
  /** Start downloading a model on this node (POST /download). Throws E_MODEL_UNKNOWN. */
  startDownload(modelId: string): Promise<void>;
  /** Delete a model's files on this node (DELETE /models/{id}). Throws E_MODEL_UNKNOWN. */
  deleteModel(modelId: string): Promise<{ deleted: boolean }>;
}

export interface ApiDeps {
  nodeId: string;
  /** GET /topology body (exo's shape: nodes, peer_graph, active_node_id). */
  topology(): unknown;
  inference: InferenceService;
  models: ModelStore;
  /** When set, every route but /healthcheck requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** The node's diagnosis routes under /debug/; each is served only when given. */
  debug?: DebugDeps;
}

/** POST /debug/health-burst's answer: `ok` false (a round trip failed) is a 502. */
export interface HealthBurst {
  ok: boolean;
  body: unknown;
}

export interface DebugDeps {
  /** GET /debug/state: request state held on this node (what tests assert returns to zero). */
  state?(): unknown | Promise<unknown>;
  /** GET /debug/net: the links' counters (dials, local ports, frames, health). */
  net?(): unknown;
  /** POST /debug/health-burst?peer=ID&count=N: N back-to-back HEALTH round trips to a peer. */
  healthBurst?(peer: string, count: number): Promise<HealthBurst>;
}
