// Continuous batching on one engine, without MLX: step calls queue here, and one loop runs them in ticks.
// A tick is one batched forward over the decode steps waiting (up to a cap), then one chunk of one prefill
// (round robin over the prefills waiting), so requests join and leave between ticks and a long prompt stalls
// the running decodes by at most one chunk per tick.
//
// Micro-batches: on a pipeline of S stages the cap is ceil(decoding / S), so stage 1 steps one group while
// stage 2 steps the group before (each stage's loop forms its groups from what has arrived, up to the cap).
// Before a decode batch the loop waits up to `gatherMs` for the cap to fill: the tokens of a batch come back
// one frame each, and a batch formed from the first arrival alone would split the group for good.
import { NodeError } from "../errors.ts";
import { WakeSet } from "../wake-set.ts";

export interface BatchJob {
  requestId: string;
  /** One position (a decode step, batched) or more (a prefill, run a chunk per tick). */
  decode: boolean;
  /** Stages of the request's pipeline (1 on a single node); the number of micro-batches to form. */
  stages: number;
  reject(err: unknown): void;
}

/** What the loop drives (local-engine.ts with MLX; tests with fakes). */
export interface BatchExecutor<J extends BatchJob> {
  /** One forward over `jobs` (decode steps); settles every job. */
  decode(jobs: J[]): Promise<void>;
  /** The next chunk of a prefill; true once the job is settled (done or failed). */
  prefillChunk(job: J): Promise<boolean>;
  /** Requests past their prefill that hold state here (they will come back for a decode step). */
  decoding(): number;
}

export interface BatchLoopOptions {
  /** Most decode steps in one forward. */
  maxBatch: number;
  /** Longest wait for a decode batch to fill up to its cap. Default 4 ms. */
  gatherMs?: number;
}

export interface BatchStats {
  /** Decode steps in the last batched forward. */
  lastBatch: number;
  /** Largest decode batch so far. */
  peakBatch: number;
  /** Step calls waiting for a tick. */
  waiting: number;
}

export interface BatchLoop<J extends BatchJob> {
  submit(job: J): void;
  /** Rejects and forgets every queued job of `requestId` (an END while it waits). */
  cancel(requestId: string): void;
  stats(): BatchStats;
}

/** The decode batch cap: all of them on one stage, an even share per micro-batch on a pipeline. */
export function decodeCap(decoding: number, stages: number, maxBatch: number): number {
  return Math.max(1, Math.min(maxBatch, Math.ceil(decoding / Math.max(1, stages))));
}

export function createBatchLoop<J extends BatchJob>(exec: BatchExecutor<J>, opts: BatchLoopOptions): BatchLoop<J> {
  const gatherMs = opts.gatherMs ?? 4;
  const decodes: J[] = [];
  const prefills: J[] = [];
  let running = false;
  let lastBatch = 0;
  let peakBatch = 0;
  /** Woken by each submit, so a gathering tick starts as soon as its batch is full rather than on a poll. */
  const submitted = new WakeSet();

  const cap = () => decodeCap(exec.decoding(), Math.max(1, ...decodes.map((j) => j.stages)), opts.maxBatch);

  /** Lets frames already received become step calls, and waits (bounded) for a decode batch to fill. */
  async function gather(): Promise<void> {
    const deadline = performance.now() + gatherMs;
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (decodes.length > 0 && decodes.length < cap() && prefills.length === 0 && performance.now() < deadline)
      await submitted.wait(deadline - performance.now());
  }

  async function loop(): Promise<void> {
    running = true;
    try {
      while (decodes.length > 0 || prefills.length > 0) {
        await gather();
        if (decodes.length > 0) {
          const batch = decodes.splice(0, cap());
          lastBatch = batch.length;
          peakBatch = Math.max(peakBatch, batch.length);
          await exec.decode(batch);
        }
        const job = prefills.shift();
        if (job && !(await exec.prefillChunk(job))) prefills.push(job);
      }
    } finally {
      running = false;
    }
  }

  return {
    submit(job) {
      (job.decode ? decodes : prefills).push(job);
      submitted.wakeAll();
      if (!running) void loop();
    },
    cancel(requestId) {
      for (const list of [decodes, prefills]) {
        for (let i = list.length - 1; i >= 0; i--) {
          const job = list[i]!;
          if (job.requestId !== requestId) continue;
          list.splice(i, 1);
          job.reject(new NodeError("E_CANCELLED", `request ${requestId} ended while its step waited`));
        }
      }
    },
    stats: () => ({ lastBatch, peakBatch, waiting: decodes.length + prefills.length }),
  };
}
