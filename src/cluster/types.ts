// The inference contract: what a cluster serves and how a generation is asked for and streamed back. The
// cluster implements it (service.ts); the HTTP API and `exo run` consume it, so they can be driven by fakes.
import type { SamplingParams } from "../engine/types.ts";
import type { ModelId } from "../ids.ts";
import type { LayerRange } from "../topology/types.ts";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  [extra: string]: unknown;
}

/** A validated generation request, in the node's own terms (the API translates OpenAI → this). */
export interface GenerateRequest {
  /** The model as the client named it (a catalog id, a Hugging Face repo id or a local directory); resolved by the service. */
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
  | { kind: "done"; finishReason: FinishReason; usage: Usage; stopSequence?: string };

export interface ModelInfo {
  id: ModelId;
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

/** One node's part of a placed model (its layer range), and how far it got preparing it. */
export interface PlacedStage extends LayerRange {
  nodeId: string;
  /** Memory of the node in MB, when known. */
  memoryMb?: number;
  /** Its last STATUS: download, load or ready (undefined before any was heard). */
  phase?: "download" | "load" | "ready";
  /** 0..1 within the phase. */
  fraction?: number;
}

/** A model placed on the cluster by this node: its plan and the requests it coordinates now. */
export interface Placement {
  modelId: string;
  nLayers: number;
  /** ready, degraded (a node of its plan is down, or no plan fits) or re-placing (a new plan is loading). */
  state: "ready" | "degraded" | "re-placing";
  /** Why it is degraded or re-placing. */
  reason?: string;
  stages: PlacedStage[];
  requestsInFlight: number;
}

/** What `exo ps`, `exo stop` and the dashboard see of the cluster through the API. */
export interface PlacementService {
  placements(): Placement[];
  /** Free `modelId` on every node that is up; resolves with the nodes that held it. @throws E_MODEL_UNKNOWN */
  unload(modelId: string): Promise<{ modelId: string; nodes: string[] }>;
}
