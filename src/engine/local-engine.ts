// ShardEngine in this process on MLX: loads one shard (config + only its weights), runs steps with a
// per-request KV cache and sampler, frees them on end() or error, and refuses requests beyond the limit.
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { ShardModel } from "../models/base.ts";
import { getArchitecture } from "../models/index.ts";
import { createKVCache } from "../models/kv-cache.ts";
import { stageTensorFilter, tiedHead } from "../models/spec/architectures.ts";
import { readConfigFile } from "../models/spec/config-file.ts";
import { parseModelArgs } from "../models/spec/model-args.ts";
import { modelDirForMlx } from "./embedded-assets.ts";
import { releaseMemory } from "./memory.ts";
import { makeSampler } from "./sampler.ts";
import { arrayToTensor, tensorToArray } from "./tensor-bytes.ts";
import { createBatchExecutor, type RequestState, type StepJob } from "./batch-executor.ts";
import { createBatchLoop } from "./batch-loop.ts";
import type { LoadProgress, SamplingParams, ShardEngine, ShardSpec, StageInput, StageOutput } from "./types.ts";
import { checkpointIndex, loadShardWeights, type CpuExperts } from "./weights.ts";

const log = logger("engine");

export interface LocalEngineOptions {
  /** Live per-request caches allowed; one more is refused with E_CAPACITY. Default 32. */
  maxLiveRequests?: number;
  /** Run GC + yield every this many steps (mlx-notes §4). Default 4. */
  gcEverySteps?: number;
  /** Keep checkpoint dtypes (Metal). Default: Metal available. */
  native?: boolean;
  /** Prompts longer than this are prefilled in chunks of this many positions. Default 512. */
  prefillChunkTokens?: number;
  /** CPU: keep 2/4/8-bit routed experts packed (default) or dequantize them at load (src/models/README.md). */
  cpuExperts?: CpuExperts;
  /**
   * Most decode steps of different requests run in one forward (continuous batching, batch-loop.ts).
   * Default 32. 1 keeps the engine as it was before batching: each step runs on its own (benchmarks compare).
   */
  maxBatch?: number;
  /** Longest wait for a decode batch to fill (batch-loop.ts). Default 4 ms. */
  gatherMs?: number;
}

/** What the last load did (tests and benchmarks read it). */
export interface LoadReport {
  tensorsRead: string[];
  files: string[];
  loadMs: number;
}

export interface LocalEngine extends ShardEngine {
  lastLoad(): LoadReport | undefined;
}

/** Creates an in-process MLX engine; load() a shard before step(). */
export function createLocalEngine(opts: LocalEngineOptions = {}): LocalEngine {
  const maxLive = opts.maxLiveRequests ?? 32;
  const gcEvery = Math.max(1, opts.gcEverySteps ?? 4);
  const prefillChunk = Math.max(1, opts.prefillChunkTokens ?? 512);
  const native = opts.native ?? mx.metal.isAvailable();
  const requests = new Map<string, RequestState>();
  let model: ShardModel | undefined;
  let shard: ShardSpec | undefined;
  let report: LoadReport | undefined;
  let steps = 0;
  let loadQueue: Promise<unknown> = Promise.resolve();
  const maxBatch = Math.max(1, opts.maxBatch ?? 32);
  const batches = createBatchLoop(
    createBatchExecutor({
      model: () => model,
      isLive: (requestId, st) => requests.get(requestId) === st,
      drop: (requestId) => dropRequest(requestId),
      decoding: () => {
        let n = 0;
        for (const st of requests.values()) if (st.prefilled) n++;
        return n;
      },
      prefillChunk,
      gcEvery,
    }),
    { maxBatch, ...(opts.gatherMs === undefined ? {} : { gatherMs: opts.gatherMs }) },
  );

  function dropAll(): void {
    for (const st of requests.values()) st.cache.free();
    requests.clear();
  }

  /** Frees a request's cache; a failed step ends its request too, so nothing leaks after an error. */
  function dropRequest(requestId: string): void {
    requests.get(requestId)?.cache.free();
    requests.delete(requestId);
  }

  function stateFor(requestId: string, m: ShardModel, sampling: SamplingParams): RequestState {
    const found = requests.get(requestId);
    if (found) return found;
    if (requests.size >= maxLive) {
      throw new NodeError(
        "E_CAPACITY",
        `engine holds ${requests.size} live requests (limit ${maxLive}); refusing ${requestId}, retry when one ends`,
      );
    }
    const st: RequestState = {
      cache: createKVCache(m.cacheSpec),
      greedy: !(sampling.temperature > 0),
      prefilled: false,
    };
    if (m.range.layerEnd === m.range.nLayers) st.sampler = makeSampler(sampling);
    requests.set(requestId, st);
    return st;
  }

  /**
   * Runs a long prefill in chunks through the cache: attention scores stay [chunk, T] instead of [L, L],
   * and the event loop turns between chunks (so an end() or another request's step can run).
   */
  async function forwardChunked(m: ShardModel, x: mx.array, st: RequestState, requestId: string): Promise<mx.array> {
    const L = x.shape[1]!;
    if (L <= prefillChunk) return m.forward(x, st.cache);
    const outs: mx.array[] = [];
    for (let s = 0; s < L; s += prefillChunk) {
      const part = m.forward(x.index(mx.Slice(), mx.Slice(s, Math.min(L, s + prefillChunk))), st.cache);
      mx.eval(part);
      outs.push(part);
      if (s + prefillChunk >= L) break;
      await releaseMemory();
      if (requests.get(requestId) !== st)
        throw new NodeError("E_CANCELLED", `request ${requestId} ended during its prefill`);
    }
    // The last stage only needs the final chunk's logits; other stages pass every position on.
    return st.sampler ? outs[outs.length - 1]! : mx.concatenate(outs, 1);
  }

  function inputArray(m: ShardModel, input: StageInput): mx.array {
    if (m.range.layerStart === 0) {
      if (input.kind !== "tokens")
        throw new NodeError("E_PROTOCOL_PAYLOAD", "the first stage takes token ids, got a hidden state");
      const bad = input.tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= m.args.vocabSize);
      if (input.tokens.length === 0 || bad !== undefined) {
        throw new NodeError(
          "E_PROTOCOL_PAYLOAD",
          `tokens must be 1+ ids in [0, ${m.args.vocabSize}), got ${input.tokens.length ? bad : "none"}`,
        );
      }
      return mx.array([input.tokens], mx.int32);
    }
    if (input.kind !== "hidden")
      throw new NodeError(
        "E_PROTOCOL_PAYLOAD",
        `stage at layer ${m.range.layerStart} takes a hidden state, got tokens`,
      );
    const { shape, dtype } = input.tensor;
    if (
      shape.length !== 3 ||
      shape[0] !== 1 ||
      shape[2] !== m.args.hiddenSize ||
      !shape[1] ||
      !["float32", "float16", "bfloat16"].includes(dtype)
    ) {
      throw new NodeError(
        "E_PROTOCOL_PAYLOAD",
        `hidden state must be float[1,T,${m.args.hiddenSize}], got ${dtype}[${shape.join(",")}]`,
      );
    }
    const a = tensorToArray(input.tensor);
    return native || a.dtype === mx.float32 ? a : a.astype(mx.float32);
  }

  async function loadShard(spec: ShardSpec, onProgress?: LoadProgress): Promise<void> {
    if (spec.layerStart < 0 || spec.layerEnd <= spec.layerStart || spec.layerEnd > spec.nLayers) {
      throw new NodeError(
        "E_WEIGHTS",
        `shard [${spec.layerStart}, ${spec.layerEnd}) is not a non-empty range of ${spec.nLayers} layers`,
      );
    }
    const started = performance.now();
    onProgress?.(0, "reading config");
    const args = parseModelArgs(await readConfigFile(spec.modelDir));
    if (args.numHiddenLayers !== spec.nLayers) {
      throw new NodeError(
        "E_WEIGHTS",
        `shard says ${spec.nLayers} layers but ${spec.modelId}'s config.json has ${args.numHiddenLayers}`,
      );
    }
    const arch = getArchitecture(args.modelType);
    const range = { layerStart: spec.layerStart, layerEnd: spec.layerEnd, nLayers: spec.nLayers };
    const dir = modelDirForMlx(spec.modelDir);
    // The head is tied when config.json, the architecture or the checkpoint (no lm_head) says so.
    const names = [...checkpointIndex(dir).keys()];
    args.tieWordEmbeddings = tiedHead(args, names);
    dropAll();
    model = undefined;
    shard = undefined;
    await releaseMemory();
    const loaded = await loadShardWeights(dir, stageTensorFilter(args, range, names), {
      native,
      quantization: args.quantization,
      ...(opts.cpuExperts ? { cpuExperts: opts.cpuExperts } : {}),
      onProgress: (f) => onProgress?.(f * 0.99, "loading weights"),
    });
    model = arch.create(args, range, loaded.weights);
    shard = { ...spec };
    report = { tensorsRead: loaded.tensorsRead, files: loaded.files, loadMs: performance.now() - started };
    log.info(
      `loaded ${spec.modelId} layers [${spec.layerStart}, ${spec.layerEnd}) of ${spec.nLayers} in ${report.loadMs.toFixed(0)} ms`,
    );
    onProgress?.(1, "loaded");
  }

  return {
    load(spec, onProgress) {
      // Loads run one at a time: a second PREPARE waits for the first instead of interleaving with it.
      const run = loadQueue.then(() => loadShard(spec, onProgress));
      loadQueue = run.catch(() => undefined);
      return run;
    },
    loaded: () => (shard ? { ...shard } : undefined),
    unload() {
      const run = loadQueue.then(async () => {
        dropAll();
        model = undefined;
        shard = undefined;
        await releaseMemory();
      });
      loadQueue = run.catch(() => undefined);
      return run;
    },
    async step(requestId, input, sampling, hints): Promise<StageOutput> {
      if (maxBatch === 1) return stepAlone(requestId, input, sampling);
      const m = model;
      if (!m) throw new NodeError("E_RUNNER", "no shard loaded: call load() before step()");
      let x: mx.array;
      try {
        x = inputArray(m, input);
      } catch (err) {
        dropRequest(requestId);
        throw err;
      }
      const state = stateFor(requestId, m, sampling);
      const stages = Math.max(1, Math.floor(hints?.stages ?? 1));
      return new Promise<StageOutput>((resolve, reject) => {
        const job: StepJob = {
          requestId,
          decode: x.shape[1] === 1,
          stages,
          state,
          x,
          done: 0,
          outs: [],
          resolve,
          reject,
        };
        batches.submit(job);
      });
    },
    async end(requestId) {
      dropRequest(requestId);
      batches.cancel(requestId);
    },
    liveRequests: async () => requests.size,
    batchStats: async () => batches.stats(),
    async close() {
      dropAll();
      model = undefined;
      shard = undefined;
      await releaseMemory();
    },
    lastLoad: () => report,
  };

  /** A step on its own, as the engine ran before batching (maxBatch 1). */
  async function stepAlone(requestId: string, input: StageInput, sampling: SamplingParams): Promise<StageOutput> {
    {
      const m = model;
      if (!m) throw new NodeError("E_RUNNER", "no shard loaded: call load() before step()");
      let x: mx.array;
      try {
        x = inputArray(m, input);
      } catch (err) {
        dropRequest(requestId);
        throw err;
      }
      const st = stateFor(requestId, m, sampling);
      let out: StageOutput;
      try {
        const y = await forwardChunked(m, x, st, requestId);
        if (st.sampler) out = { kind: "token", token: st.sampler(y) };
        else {
          mx.eval(y);
          out = { kind: "hidden", tensor: arrayToTensor(y) };
        }
      } catch (err) {
        dropRequest(requestId);
        throw err;
      }
      if (++steps % gcEvery === 0) await releaseMemory();
      return out;
    }
  }
}
