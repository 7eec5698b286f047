// ShardEngine backed by a runner child process: calls travel as frames with ids (many in flight), a
// dead runner fails its in-flight calls with E_RUNNER_CRASHED and is restarted with the last shard.
import { NodeError } from "../errors.ts";
import { logger, rootLogger } from "../log.ts";
import { PendingCalls } from "../pending-calls.ts";
import { encodeFrame } from "../protocol/frame.ts";
import { missingMlxAddon } from "./embedded-assets.ts";
import type { FakeEngineOptions } from "./fake-engine.ts";
import { createRestartPolicy, type RestartPolicy } from "./restart-policy.ts";
import { isShuttingDown, runnerCommand, spawnRunner, type RunnerExit, type RunnerProcess } from "./runner-process.ts";
import {
  decodeRunnerReply,
  encodeRunnerCall,
  type RunnerCall,
  type RunnerCallBody,
  type RunnerReply,
} from "./runner-wire.ts";
import type { LoadProgress, ShardEngine, ShardSpec } from "./types.ts";

const log = logger("engine");

export interface RunnerEngineOptions {
  engine: "mlx" | "fake";
  /** argv prefix starting `exo runner`; default runnerCommand() (this same executable). */
  command?: string[];
  maxLiveRequests?: number;
  /** Most decode steps in one forward (`exo runner --max-batch`); 1 = each step on its own. */
  maxBatch?: number;
  /** Options of the fake engine when engine is "fake". */
  fake?: FakeEngineOptions;
  /** Test-only fault spec passed to the runner (runner-fault.ts), e.g. "abort-on-request:crash-". */
  fault?: string;
  /** Spawn → HELLO deadline. Default 30 s. */
  startTimeoutMs?: number;
  /** A call unanswered for this long means a hung runner: it is killed and restarted. Default: no limit. */
  callTimeoutMs?: number;
  /** Told about every unexpected runner exit, after the calls in flight were rejected. */
  onCrash?: (info: { pid: number; exit: RunnerExit; inflight: number }) => void;
  /** When a crashed runner starts again; default createRestartPolicy(). */
  restarts?: RestartPolicy;
}

export interface RunnerEngine extends ShardEngine {
  /** Pid of the current runner child, if one is running. */
  pid(): number | undefined;
}

interface Runner {
  proc: RunnerProcess;
  /** Calls in flight, each with its load-progress listener; closed with the runner's death, so later sends fail at once. */
  pending: PendingCalls<number, RunnerReply, LoadProgress | undefined>;
  hello: PromiseWithResolvers<void>;
  /** Set when the client itself killed this runner, so the error says why. */
  killedBecause?: string;
}

/** Creates the engine; the runner starts on first use. */
export function createRunnerEngine(opts: RunnerEngineOptions): RunnerEngine {
  const argv = [...(opts.command ?? runnerCommand()), ...runnerArgs(opts)];
  // Said once at node start, not only when the first model fails to load.
  const noMlx = opts.engine === "mlx" ? missingMlxAddon() : undefined;
  if (noMlx) log.warn(noMlx);
  let current: Runner | undefined;
  let starting: Promise<Runner> | undefined;
  let shard: ShardSpec | undefined;
  let closed = false;
  let nextId = 1;
  const restarts = opts.restarts ?? createRestartPolicy();
  const live = new Set<string>();
  const lost = new Set<string>();

  function spawn(): Runner {
    const runner: Runner = {
      proc: undefined as unknown as RunnerProcess,
      pending: new PendingCalls(),
      hello: Promise.withResolvers<void>(),
    };
    runner.hello.promise.catch(() => {});
    runner.proc = spawnRunner(argv, (msg) => onReply(runner, decodeRunnerReply(msg)));
    void runner.proc.exited.then((exit) => onExit(runner, exit));
    return runner;
  }

  function onReply(runner: Runner, reply: RunnerReply): void {
    if (reply.kind === "hello") return runner.hello.resolve();
    if (reply.kind === "progress") return runner.pending.meta(reply.id)?.(reply.fraction, reply.detail);
    if (!runner.pending.resolve(reply.id, reply)) return;
    if (runner.pending.size === 0) runner.proc.hold(false);
  }

  function onExit(runner: Runner, exit: RunnerExit): void {
    const why = runner.killedBecause ?? exit.reason;
    const how = (exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`) + (why ? ` (${why})` : "");
    const inflight = runner.pending.size;
    const err = closed
      ? new NodeError("E_RUNNER", "engine runner was closed")
      : new NodeError(
          "E_RUNNER_CRASHED",
          `engine runner (pid ${runner.proc.pid}) died with ${how}; ${inflight} call(s) in flight failed`,
        );
    runner.hello.reject(err);
    runner.pending.close(err);
    if (current !== runner) return;
    current = undefined;
    for (const id of live) lost.add(id);
    live.clear();
    if (closed || isShuttingDown()) return;
    log.warn(err.message);
    opts.onCrash?.({ pid: runner.proc.pid, exit, inflight });
    if (restarts.crashed()) restartSoon();
  }

  /** Starts a runner without waiting for a call; a start that the crash interrupted settles first (it fails its own callers). */
  function restartSoon(): void {
    void (starting ?? Promise.resolve())
      .catch(() => {})
      .then(() => (closed || current || starting ? undefined : ensure()))
      .catch((e: Error) => log.error(`engine runner restart failed: ${e.message}`));
  }

  async function start(): Promise<Runner> {
    const delayMs = restarts.startDelayMs();
    if (delayMs > 0) await Bun.sleep(delayMs);
    const runner = spawn();
    current = runner;
    const timeoutMs = opts.startTimeoutMs ?? 30_000;
    const timer = setTimeout(
      () => runner.hello.reject(new NodeError("E_RUNNER", `engine runner did not start within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      await runner.hello.promise;
      log.info(`engine runner ${runner.proc.pid} started (${opts.engine})`);
      if (shard) await reload(runner, shard);
      restarts.started();
      return runner;
    } catch (err) {
      runner.proc.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Puts the last shard back; one that fails (or kills the runner) is dropped rather than retried forever. */
  async function reload(runner: Runner, target: ShardSpec): Promise<void> {
    try {
      expectReply(await send(runner, { op: "load", shard: target }), "ok");
    } catch (err) {
      shard = undefined;
      log.error(
        `engine runner could not re-load ${target.modelId} [${target.layerStart}, ${target.layerEnd}) (${(err as Error).message}); it now holds no shard`,
      );
      if ((err as NodeError).code === "E_RUNNER_CRASHED") throw err;
    }
  }

  async function ensure(): Promise<Runner> {
    if (closed) throw new NodeError("E_RUNNER", "engine runner is closed");
    if (starting) return starting;
    if (current) return current;
    starting = start().finally(() => (starting = undefined));
    return starting;
  }

  function send(runner: Runner, call: RunnerCallBody, onProgress?: LoadProgress): Promise<RunnerReply> {
    const id = nextId++;
    const frame = encodeFrame(encodeRunnerCall({ ...call, id } as RunnerCall));
    const limitMs = opts.callTimeoutMs;
    // A hung runner is killed; its exit then fails this call and every other one in flight.
    const reply = runner.pending.add(id, {
      meta: onProgress,
      timeoutMs: limitMs,
      onTimeout: () => {
        runner.killedBecause = `killed: no answer to a ${call.op} call within ${limitMs} ms`;
        runner.proc.kill();
        return undefined;
      },
    });
    if (runner.pending.has(id)) {
      runner.proc.hold(true);
      runner.proc.write(frame);
    }
    return reply;
  }

  async function call(c: RunnerCallBody, onProgress?: LoadProgress): Promise<RunnerReply> {
    return send(await ensure(), c, onProgress);
  }

  return {
    async load(spec, onProgress) {
      const reply = await call({ op: "load", shard: spec }, onProgress);
      // A load that failed half-way may have dropped the old shard: mirror what the runner holds now.
      const now =
        reply.kind === "error"
          ? (expectReply(await call({ op: "health" }), "health").loaded ?? undefined)
          : { ...spec };
      if (reply.kind !== "error" || JSON.stringify(now) !== JSON.stringify(shard)) {
        live.clear();
        lost.clear();
      }
      shard = now;
      expectReply(reply, "ok");
    },
    loaded: () => (shard ? { ...shard } : undefined),
    async unload() {
      // Stopping the runner is the one way to hand all of MLX's memory back; the next call starts a bare one.
      shard = undefined;
      live.clear();
      lost.clear();
      const runner = current ?? (await starting?.catch(() => undefined));
      if (!runner) return;
      current = undefined;
      runner.killedBecause = "stopped: the model was unloaded";
      await runner.proc.stop();
      log.info(`engine runner ${runner.proc.pid} stopped: the model was unloaded`);
    },
    async step(requestId, input, sampling, hints) {
      if (lost.has(requestId)) {
        throw new NodeError("E_RUNNER_CRASHED", `request ${requestId} lost its state when the engine runner restarted`);
      }
      const wasLive = live.has(requestId);
      live.add(requestId);
      try {
        const reply = expectReply(
          await call({ op: "step", requestId, input, sampling, ...(hints?.stages ? { stages: hints.stages } : {}) }),
          "output",
        );
        return reply.output;
      } catch (err) {
        if (!wasLive && (err as NodeError).code !== "E_RUNNER_CRASHED") live.delete(requestId);
        throw err;
      }
    },
    async end(requestId) {
      live.delete(requestId);
      if (lost.delete(requestId) || closed || (!current && !starting)) return;
      expectReply(await call({ op: "end", requestId }), "ok");
    },
    async liveRequests() {
      if (closed) return 0;
      return expectReply(await call({ op: "health" }), "health").liveRequests;
    },
    async batchStats() {
      const none = { lastBatch: 0, peakBatch: 0, waiting: 0 };
      if (closed || (!current && !starting)) return none;
      return expectReply(await call({ op: "health" }), "health").batch ?? none;
    },
    async close() {
      closed = true;
      const runner = current ?? (await starting?.catch(() => undefined));
      current = undefined;
      if (runner) await runner.proc.stop();
    },
    pid: () => current?.proc.pid,
  };
}

// --- internal ---

function runnerArgs(opts: RunnerEngineOptions): string[] {
  const args = ["--engine", opts.engine, "--parent-pid", String(process.pid), "--log-level", String(rootLogger.level)];
  if (opts.maxLiveRequests !== undefined) args.push("--max-live", String(opts.maxLiveRequests));
  if (opts.maxBatch !== undefined) args.push("--max-batch", String(opts.maxBatch));
  if (opts.fake) args.push("--fake", JSON.stringify(opts.fake));
  if (opts.fault) args.push("--fault", opts.fault);
  return args;
}

/** Narrows a reply to the expected kind; an ERROR reply becomes the NodeError it carries. */
function expectReply<K extends RunnerReply["kind"]>(reply: RunnerReply, kind: K): Extract<RunnerReply, { kind: K }> {
  if (reply.kind === "error") throw new NodeError(reply.code, reply.message);
  if (reply.kind !== kind)
    throw new NodeError("E_RUNNER", `engine runner answered ${reply.kind} where ${kind} was expected`);
  return reply as Extract<RunnerReply, { kind: K }>;
}
