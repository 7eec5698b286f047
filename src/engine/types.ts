// The contract between the cluster and whatever runs a shard (in-process MLX, the runner child, a fake).
import type { Tensor } from "../protocol/types.ts";
import type { LayerRange } from "../topology/types.ts";

/** A contiguous slice of a model's layers. Half-open: layerStart included, layerEnd excluded. */
/** The layers [layerStart, layerEnd) of a model that one engine loads. */
export interface ShardSpec extends LayerRange {
  modelId: string;
  /** Directory holding config.json, tokenizer files and the safetensors that cover this shard. */
  modelDir: string;
  /** Total layers of the model; the shard with layerEnd === nLayers owns the final norm and head. */
  nLayers: number;
}

/** Sampling parameters of one request; applied on the last stage. */
export interface SamplingParams {
  /** 0 means greedy (argmax). */
  temperature: number;
  /** 1 disables nucleus filtering. */
  topP: number;
  /** 0 disables top-k filtering. */
  topK: number;
  /** Same seed + same prompt → same tokens. */
  seed?: number;
  /**
   * Index of the first token this request samples (default 0). A failover replays the prompt plus the tokens
   * already streamed and starts here, so a seeded sampler takes the same draw it would have taken (issue 17).
   */
  startIndex?: number;
}

/** What a stage consumes: token ids on the first stage, hidden states elsewhere. */
export type StageInput = { kind: "tokens"; tokens: number[] } | { kind: "hidden"; tensor: Tensor };

/** What a stage produces: hidden states for the next stage, or a sampled token on the last one. */
export type StageOutput = { kind: "hidden"; tensor: Tensor } | { kind: "token"; token: number };

/** What a stage knows about a step beyond the request itself. */
export interface StepHints {
  /** Stages of the request's pipeline: a batching engine forms that many micro-batches (batch-loop.ts). */
  stages?: number;
}

/** How an engine batches right now (GET /debug/state). */
export interface EngineBatchStats {
  /** Decode steps in the last batched forward. */
  lastBatch: number;
  /** Largest decode batch since the engine started. */
  peakBatch: number;
  /** Step calls waiting for the engine's next tick. */
  waiting: number;
}

/** Progress of loading a shard, 0..1. */
export type LoadProgress = (fraction: number, detail?: string) => void;

/**
 * Runs one shard. Per-request state (KV cache, RNG) is created by the first `step` of a request
 * and freed by `end` (idempotent). A request beyond the live-cache limit fails with E_CAPACITY.
 */
export interface ShardEngine {
  load(shard: ShardSpec, onProgress?: LoadProgress): Promise<void>;
  /** The shard currently loaded, if any. */
  loaded(): ShardSpec | undefined;
  /** Drop the loaded shard and its memory (`exo stop`); requests still holding state on it fail. Idempotent. */
  unload(): Promise<void>;
  /** Steps of different requests may be called concurrently; a batching engine runs them in one forward. */
  step(requestId: string, input: StageInput, sampling: SamplingParams, hints?: StepHints): Promise<StageOutput>;
  end(requestId: string): Promise<void>;
  /** How many requests hold state right now (tests assert it drops to 0). */
  liveRequests(): Promise<number>;
  /** Batching figures, when the engine batches. */
  batchStats?(): Promise<EngineBatchStats>;
  close(): Promise<void>;
}
