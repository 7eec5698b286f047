// The MLX side of continuous batching (batch-loop.ts decides what runs when): one decode forward over
// several requests, each with its own KV cache and sampler, and prefills one chunk at a time.
// A batch of one takes the single-request path (no concatenate, no split), so one stream costs what it did.
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import type { ShardModel } from "../models/base.ts";
import type { KVCache } from "../models/kv-cache.ts";
import type { Tensor } from "../protocol/types.ts";
import type { BatchExecutor, BatchJob } from "./batch-loop.ts";
import { releaseMemory } from "./memory.ts";
import type { Sampler } from "./sampler.ts";
import { arrayToTensor } from "./tensor-bytes.ts";
import type { StageOutput } from "./types.ts";

/** One request's state on this engine. */
export interface RequestState {
  cache: KVCache;
  /** Last stage only: the request's own sampler (its own seeded RNG, so batch-mates never change its draws). */
  sampler?: Sampler;
  /** Greedy on the last stage: rows of a batch take one argmax together. */
  greedy: boolean;
  /** Its first step completed: it comes back for decode steps. */
  prefilled: boolean;
}

export interface StepJob extends BatchJob {
  state: RequestState;
  /** Tokens [1,L] or hidden [1,L,H]. */
  x: mx.array;
  /** Positions of a prefill already run. */
  done: number;
  /** Hidden outputs of earlier prefill chunks (stages other than the last pass every position on). */
  outs: mx.array[];
  resolve(out: StageOutput): void;
}

export interface BatchExecutorDeps {
  model(): ShardModel | undefined;
  /** True while `state` is still the live state of `requestId` (END or an error drops it). */
  isLive(requestId: string, state: RequestState): boolean;
  /** Frees a request after a failed step, so nothing leaks after an error. */
  drop(requestId: string): void;
  decoding(): number;
  prefillChunk: number;
  gcEvery: number;
}

export function createBatchExecutor(deps: BatchExecutorDeps): BatchExecutor<StepJob> {
  let ticks = 0;

  function fail(job: StepJob, err: unknown): void {
    deps.drop(job.requestId);
    job.reject(err);
  }

  function outputOf(st: RequestState, y: mx.array): StageOutput {
    if (st.sampler) return { kind: "token", token: st.sampler(y) };
    mx.eval(y);
    return { kind: "hidden", tensor: arrayToTensor(y) };
  }

  function finish(job: StepJob, out: StageOutput): void {
    job.state.prefilled = true;
    job.resolve(out);
  }

  /** Row outputs of a batched forward: one argmax for the greedy rows, the own sampler for the others. */
  function batchOutputs(jobs: StepJob[], y: mx.array): StageOutput[] {
    if (!jobs[0]!.state.sampler) {
      mx.eval(y);
      return splitRows(arrayToTensor(y)).map((tensor) => ({ kind: "hidden", tensor }));
    }
    const greedy = jobs.some((j) => j.state.greedy) ? (mx.argmax(y, -1).tolist() as number[]) : [];
    return jobs.map((j, b) =>
      j.state.greedy
        ? { kind: "token", token: greedy[b]! }
        : { kind: "token", token: j.state.sampler!(y.index(mx.Slice(b, b + 1))) },
    );
  }

  async function afterTick(): Promise<void> {
    if (++ticks % deps.gcEvery === 0) await releaseMemory();
  }

  return {
    decoding: () => deps.decoding(),
    async decode(all) {
      const jobs = all.filter((j) => {
        if (deps.isLive(j.requestId, j.state)) return true;
        j.reject(new NodeError("E_CANCELLED", `request ${j.requestId} ended before its step ran`));
        return false;
      });
      const m = deps.model();
      if (!m) {
        for (const j of jobs) fail(j, new NodeError("E_RUNNER", "no shard loaded: the shard was unloaded"));
        return;
      }
      if (jobs.length === 1 || !m.forwardBatch) {
        for (const j of jobs) {
          try {
            finish(j, outputOf(j.state, m.forward(j.x, j.state.cache)));
          } catch (err) {
            fail(j, err);
          }
        }
      } else if (jobs.length > 1) {
        try {
          const x = mx.concatenate(
            jobs.map((j) => j.x),
            0,
          );
          const outs = batchOutputs(
            jobs,
            m.forwardBatch(
              x,
              jobs.map((j) => j.state.cache),
            ),
          );
          for (const [b, j] of jobs.entries()) finish(j, outs[b]!);
        } catch (err) {
          for (const j of jobs) fail(j, err);
        }
      }
      await afterTick();
    },
    async prefillChunk(job) {
      const m = deps.model();
      if (!deps.isLive(job.requestId, job.state) || !m) {
        job.reject(new NodeError("E_CANCELLED", `request ${job.requestId} ended during its prefill`));
        return true;
      }
      try {
        const L = job.x.shape[1]!;
        const end = Math.min(L, job.done + deps.prefillChunk);
        const input = job.done === 0 && end === L ? job.x : job.x.index(mx.Slice(), mx.Slice(job.done, end));
        const part = m.forward(input, job.state.cache);
        job.done = end;
        if (end < L) {
          mx.eval(part);
          if (!job.state.sampler) job.outs.push(part);
          await afterTick();
          return false;
        }
        const y = job.outs.length > 0 ? mx.concatenate([...job.outs, part], 1) : part;
        job.outs = [];
        finish(job, outputOf(job.state, y));
      } catch (err) {
        fail(job, err);
      }
      await afterTick();
      return true;
    },
  };
}

/** [B, ...] bytes → B tensors [1, ...] (one read out of MLX for the whole batch). */
export function splitRows(t: Tensor): Tensor[] {
  const B = t.shape[0]!;
  const rowBytes = t.bytes.byteLength / B;
  return Array.from({ length: B }, (_, b) => ({
    dtype: t.dtype,
    shape: [1, ...t.shape.slice(1)],
    bytes: t.bytes.slice(b * rowBytes, (b + 1) * rowBytes),
  }));
}
