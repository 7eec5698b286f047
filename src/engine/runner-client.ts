// ShardEngine backed by a runner child process: calls travel as frames with ids (many in flight), a
// dead runner fails its in-flight calls with E_RUNNER_CRASHED and is restarted with the last shard.
import { NodeError } from "../errors.ts";
import { logger, rootLogger } from "../log.ts";
import { encodeFrame } from "../protocol/frame.ts";
import { missingMlxAddon } from "./embedded-assets.ts";
import type { FakeEngineOptions } from "./fake-engine.ts";
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
const MAX_EAGER_RESTARTS = 5;

export interface RunnerEngineOptions {
  engine: "mlx" | "fake";
  /** argv prefix starting `exo runner`; default runnerCommand() (this same executable). */
  command?: string[];
  maxLiveRequests?: number;
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
}

export interface RunnerEngine extends ShardEngine {
  /** Pid of the current runner child, if one is running. */
  pid(): number | undefined;
}

interface Pending {
  resolve(reply: RunnerReply): void;
  reject(err: Error): void;
  onProgress?: LoadProgress;
  timer?: ReturnType<typeof setTimeout>;
}

interface Runner {
  proc: RunnerProcess;
  pending: Map<number, Pending>;
  hello: PromiseWithResolvers<void>;
  /** Set when the client itself killed this runner, so the error says why. */
  killedBecause?: string;
  /** Set once it exited: later sends fail with it at once instead of waiting forever. */
  death?: NodeError;
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
  let crashStreak = 0;
  const live = new Set<string>();
  const lost = new Set<string>();

  function spawn(): Runner {
    const runner: Runner = {
      proc: undefined as unknown as RunnerProcess,
      pending: new Map(),
      hello: Promise.withResolvers<void>(),
    };
    runner.hello.promise.catch(() => {});
    runner.proc = spawnRunner(argv, (msg) => onReply(runner, decodeRunnerReply(msg)));
    void runner.proc.exited.then((exit) => onExit(runner, exit));
    return runner;
  }

  function onReply(runner: Runner, reply: RunnerReply): void {
    if (reply.kind === "hello") return runner.hello.resolve();
    const pending = runner.pending.get(reply.id);
    if (!pending) return;
    if (reply.kind === "progress") return pending.onProgress?.(reply.fraction, reply.detail);
    runner.pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (runner.pending.size === 0) runner.proc.hold(false);
    pending.resolve(reply);
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
    runner.death = err;
    runner.hello.reject(err);
    for (const pending of runner.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(err);
    }
    runner.pending.clear();
    if (current !== runner) return;
    current = undefined;
    for (const id of live) lost.add(id);
    live.clear();
    if (closed || isShuttingDown()) return;
    crashStreak++;
    log.warn(err.message);
    opts.onCrash?.({ pid: runner.proc.pid, exit, inflight });
    if (crashStreak > MAX_EAGER_RESTARTS) return;
    // A start that this crash interrupted fails its own callers; the restart begins once it has settled.
    void (starting ?? Promise.resolve())
      .catch(() => {})
      .then(() => (closed || current || starting ? undefined : ensure()))
      .catch((e: Error) => log.error(`engine runner restart failed: ${e.message}`));
  }

  async function start(): Promise<Runner> {
    if (crashStreak > 0) await Bun.sleep(Math.min(100 * 2 ** (crashStreak - 1), 5000));
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
      crashStreak = 0;
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
    if (runner.death) return Promise.reject(runner.death);
    return new Promise((resolve, reject) => {
      const pending: Pending = { resolve, reject, onProgress };
      const limitMs = opts.callTimeoutMs;
      if (limitMs !== undefined) {
        pending.timer = setTimeout(() => {
          runner.killedBecause = `killed: no answer to a ${call.op} call within ${limitMs} ms`;
          runner.proc.kill();
        }, limitMs);
      }
      runner.pending.set(id, pending);
      runner.proc.hold(true);
      runner.proc.write(frame);
    });
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
    async step(requestId, input, sampling) {
      if (lost.has(requestId)) {
        throw new NodeError("E_RUNNER_CRASHED", `request ${requestId} lost its state when the engine runner restarted`);
      }
      const wasLive = live.has(requestId);
      live.add(requestId);
      try {
        const reply = expectReply(await call({ op: "step", requestId, input, sampling }), "output");
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
