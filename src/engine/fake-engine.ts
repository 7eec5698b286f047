// A ShardEngine without MLX for network, cluster and runner tests: cheap, deterministic, chainable.
// The "hidden state" carries each position's token id and how many layers it has passed, so a
// multi-stage chain produces exactly the tokens one stage would, and a skipped stage is detected.
import { NodeError } from "../errors.ts";
import type { Tensor } from "../protocol/types.ts";
import type { SamplingParams, ShardEngine, ShardSpec, StageInput } from "./types.ts";

export interface FakeEngineOptions {
  /** Token ids produced are in [0, vocabSize). Default 256. */
  vocabSize?: number;
  /** Width of the fake hidden state, at least 2. Default 4. */
  hiddenSize?: number;
  /** Live-request limit; one more is refused with E_CAPACITY. Default 32. */
  maxLiveRequests?: number;
  /** Awaited per step (timer: the thread stays free). Default 0. */
  stepDelayMs?: number;
  /** Busy-wait per step, blocking the thread like an MLX eval does. Default 0. */
  stepBusyMs?: number;
  /** When set, the last stage answers this token after `eosAfterSteps` other tokens of a request. */
  eosToken?: number;
  eosAfterSteps?: number;
}

interface RequestState {
  /** Positions seen so far (the fake KV cache length). */
  length: number;
  steps: number;
  lastToken: number;
}

/** Creates a fake engine. It needs no files: load() only records the shard. */
export function createFakeEngine(opts: FakeEngineOptions = {}): ShardEngine {
  const vocabSize = opts.vocabSize ?? 256;
  const hiddenSize = Math.max(2, opts.hiddenSize ?? 4);
  const maxLive = opts.maxLiveRequests ?? 32;
  const requests = new Map<string, RequestState>();
  let shard: ShardSpec | undefined;
  let closed = false;

  function loadedShard(): ShardSpec {
    if (closed) throw new NodeError("E_RUNNER", "fake engine is closed");
    if (!shard) throw new NodeError("E_RUNNER", "no shard loaded: call load() before step()");
    return shard;
  }

  function stateFor(requestId: string): RequestState {
    const found = requests.get(requestId);
    if (found) return found;
    if (requests.size >= maxLive) {
      throw new NodeError(
        "E_CAPACITY",
        `engine holds ${requests.size} live requests (limit ${maxLive}); refusing ${requestId}`,
      );
    }
    const created: RequestState = { length: 0, steps: 0, lastToken: 0 };
    requests.set(requestId, created);
    return created;
  }

  return {
    async load(spec, onProgress) {
      if (closed) throw new NodeError("E_RUNNER", "fake engine is closed");
      checkShard(spec);
      onProgress?.(0, "fake load");
      requests.clear();
      shard = { ...spec };
      onProgress?.(1, "fake load");
    },
    loaded: () => (shard ? { ...shard } : undefined),
    async unload() {
      requests.clear();
      shard = undefined;
    },
    async step(requestId, input, sampling) {
      const spec = loadedShard();
      const positions = readPositions(spec, input, hiddenSize, vocabSize);
      const state = stateFor(requestId);
      if (opts.stepDelayMs) await Bun.sleep(opts.stepDelayMs);
      if (opts.stepBusyMs) busyWait(opts.stepBusyMs);
      if (!requests.has(requestId)) throw new NodeError("E_CANCELLED", `request ${requestId} ended during its step`);
      state.length += positions.length;
      state.steps += 1;
      if (spec.layerEnd < spec.nLayers)
        return { kind: "hidden", tensor: writeHidden(positions, spec.layerEnd, hiddenSize) };
      state.lastToken = positions[positions.length - 1]!;
      return { kind: "token", token: pickToken(state, sampling, vocabSize, opts) };
    },
    async end(requestId) {
      requests.delete(requestId);
    },
    liveRequests: async () => requests.size,
    async close() {
      closed = true;
      requests.clear();
      shard = undefined;
    },
  };
}

// --- internal ---

function checkShard(spec: ShardSpec): void {
  const ok = Number.isInteger(spec.layerStart) && Number.isInteger(spec.layerEnd) && Number.isInteger(spec.nLayers);
  if (!ok || spec.layerStart < 0 || spec.layerEnd <= spec.layerStart || spec.layerEnd > spec.nLayers) {
    throw new NodeError(
      "E_WEIGHTS",
      `shard [${spec.layerStart}, ${spec.layerEnd}) is not a non-empty range of ${spec.nLayers} layers`,
    );
  }
}

/** Token ids of the positions in this step; checks the input kind and that no stage was skipped. */
function readPositions(spec: ShardSpec, input: StageInput, hiddenSize: number, vocabSize: number): number[] {
  if (spec.layerStart === 0) {
    if (input.kind !== "tokens")
      throw new NodeError("E_PROTOCOL_PAYLOAD", "the first stage takes token ids, got a hidden state");
    const bad = input.tokens.find((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
    if (input.tokens.length === 0 || bad !== undefined) {
      throw new NodeError(
        "E_PROTOCOL_PAYLOAD",
        `tokens must be 1+ ids in [0, ${vocabSize}), got ${input.tokens.length ? bad : "none"}`,
      );
    }
    return [...input.tokens];
  }
  if (input.kind !== "hidden")
    throw new NodeError("E_PROTOCOL_PAYLOAD", `stage at layer ${spec.layerStart} takes a hidden state, got tokens`);
  const { tensor } = input;
  const [batch, length, width] = tensor.shape;
  if (tensor.dtype !== "float32" || tensor.shape.length !== 3 || batch !== 1 || width !== hiddenSize || !length) {
    throw new NodeError(
      "E_PROTOCOL_PAYLOAD",
      `fake hidden state must be float32[1,T,${hiddenSize}], got ${tensor.dtype}[${tensor.shape.join(",")}]`,
    );
  }
  const values = new Float32Array(tensor.bytes.slice().buffer);
  const tokens: number[] = [];
  for (let i = 0; i < length; i++) {
    const layers = values[i * hiddenSize + 1];
    if (layers !== spec.layerStart) {
      throw new NodeError(
        "E_PROTOCOL_PAYLOAD",
        `hidden state has passed ${layers} layers but this stage starts at layer ${spec.layerStart}`,
      );
    }
    tokens.push(values[i * hiddenSize]!);
  }
  return tokens;
}

function writeHidden(tokens: number[], layersPassed: number, hiddenSize: number): Tensor {
  const values = new Float32Array(tokens.length * hiddenSize);
  tokens.forEach((token, i) => {
    values[i * hiddenSize] = token;
    values[i * hiddenSize + 1] = layersPassed;
    for (let j = 2; j < hiddenSize; j++) values[i * hiddenSize + j] = Math.sin(token + j);
  });
  return { dtype: "float32", shape: [1, tokens.length, hiddenSize], bytes: new Uint8Array(values.buffer) };
}

/** The next token depends only on the request's history length, last token and seed. */
function pickToken(state: RequestState, sampling: SamplingParams, vocabSize: number, opts: FakeEngineOptions): number {
  if (opts.eosToken !== undefined && opts.eosAfterSteps !== undefined && state.steps > opts.eosAfterSteps)
    return opts.eosToken;
  let token = (state.lastToken * 31 + state.length * 7 + 3) % vocabSize;
  if (sampling.temperature > 0) token = (token + (sampling.seed ?? 0) * 13) % vocabSize;
  if (opts.eosToken !== undefined && token === opts.eosToken) token = (token + 1) % vocabSize;
  return token;
}

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spin: this simulates a blocking MLX eval on the engine's thread.
  }
}
