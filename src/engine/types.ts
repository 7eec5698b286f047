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
  step(requestId: string, input: StageInput, sampling: SamplingParams): Promise<StageOutput>;
  end(requestId: string): Promise<void>;
  /** How many requests hold state right now (tests assert it drops to 0). */
  liveRequests(): Promise<number>;
  close(): Promise<void>;
}
