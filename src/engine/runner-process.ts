// Runner children as processes: the command that starts `exo runner`, the frame pipes, and the node's
// side of "no orphans" (every live child is killed when the node exits or a signal terminates it).
import type { Subprocess } from "bun";
import { embeddedRoot } from "../embedded-root.ts";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { FrameDecoder } from "../protocol/frame.ts";
import type { Message } from "../protocol/types.ts";

const log = logger("engine");

export interface RunnerExit {
  code: number | null;
  signal: string | null;
  /** Why it died, when its last stderr output says so (e.g. MLX's "what(): ..." before an abort). */
  reason?: string;
}

export interface RunnerProcess {
  readonly pid: number;
  /** Queues one whole frame on the child's stdin. Writes after the child died are dropped (its exit is reported). */
  write(frame: Uint8Array): void;
  /** Resolves once the child has exited, for any reason. */
  readonly exited: Promise<RunnerExit>;
  /** Closes stdin (the runner finishes and exits), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<RunnerExit>;
  kill(): void;
  /** While true, the child keeps this process alive (calls are waiting for it). */
  hold(busy: boolean): void;
}

/**
 * The argv prefix that starts `exo runner` from this same executable: `[bun, src/main.ts, "runner"]`
 * from sources, `[exo, "runner"]` when compiled (the bundle then lives under Bun's virtual /$bunfs root).
 */
export function runnerCommand(): string[] {
  if (embeddedRoot(import.meta.dir) !== undefined) return [process.execPath, "runner"];
  return [process.execPath, Bun.fileURLToPath(new URL("../main.ts", import.meta.url)), "runner"];
}

/**
 * Starts one runner; `onMessage` gets each decoded frame; a broken stream kills the child.
 * @throws NodeError E_RUNNER when the command cannot be started.
 */
export function spawnRunner(argv: string[], onMessage: (msg: Message) => void): RunnerProcess {
  if (shuttingDown) throw new NodeError("E_RUNNER", "not starting an engine runner: this process is shutting down");
  let child: Subprocess<"pipe", "pipe", "pipe">;
  try {
    child = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  } catch (err) {
    throw new NodeError("E_RUNNER", `cannot start the engine runner (${argv.join(" ")}): ${(err as Error).message}`, {
      cause: err,
    });
  }
  track(child);
  // An idle runner must not keep the node alive; the client refs it while calls are pending.
  child.unref();
  let alive = true;
  const stderr = relayStderr(child.stderr);
  const exited: Promise<RunnerExit> = child.exited.then(async () => {
    alive = false;
    children.delete(child);
    // The last stderr bytes may still be in the pipe when the exit is seen.
    await Promise.race([stderr.done, Bun.sleep(500)]);
    const signal = child.signalCode === null ? null : String(child.signalCode);
    return { code: child.exitCode, signal, reason: crashReason(stderr.tail()) };
  });
  void readFrames(child, onMessage);

  const kill = () => {
    if (alive) child.kill("SIGKILL");
  };
  return {
    pid: child.pid,
    exited,
    kill,
    hold: (busy) => (busy ? child.ref() : child.unref()),
    write(frame) {
      if (!alive) return;
      try {
        child.stdin.write(frame);
        void child.stdin.flush();
      } catch (err) {
        // The child is gone or going (EPIPE): its exit handler reports the failure to callers.
        log.debug(`write to runner ${child.pid} failed: ${(err as Error).message}`);
      }
    },
    async stop(graceMs = 2000) {
      if (alive) void Promise.resolve(child.stdin.end()).catch(() => {});
      const timer = setTimeout(kill, graceMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}

/** The one line of a dying runner's stderr that says why: a C++ exception's what(), a panic, an error. */
export function crashReason(stderrTail: string): string | undefined {
  const lines = stderrTail.split("\n").map((l) => l.trim());
  const what = lines.find((l) => l.startsWith("what():"));
  if (what) return what.slice("what():".length).trim();
  // `exo: <message> [E_CODE]` is how main.ts prints a NodeError (e.g. E_MLX_UNAVAILABLE in a build without MLX).
  const error = lines.findLast((l) => /^(exo: |(error|panic|RangeError|TypeError|NodeError)\b)/.test(l));
  return error || undefined;
}

// --- internal ---

const STDERR_TAIL_BYTES = 4096;

/** Copies the runner's stderr to ours (its logs join the node's) and keeps the last few KiB. */
function relayStderr(stream: ReadableStream<Uint8Array>): { done: Promise<void>; tail(): string } {
  let tail = "";
  const decoder = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) {
      process.stderr.write(chunk);
      tail = (tail + decoder.decode(chunk, { stream: true })).slice(-STDERR_TAIL_BYTES);
    }
  })();
  return { done, tail: () => tail };
}

async function readFrames(child: Subprocess<"pipe", "pipe", "pipe">, onMessage: (msg: Message) => void): Promise<void> {
  const decoder = new FrameDecoder();
  try {
    for await (const chunk of child.stdout) {
      for (const msg of decoder.push(chunk)) onMessage(msg);
    }
  } catch (err) {
    log.error(`runner ${child.pid} sent a broken frame stream (${(err as Error).message}); killing it`);
    child.kill("SIGKILL");
  }
}

const children = new Set<Subprocess>();
let hooksInstalled = false;
let shuttingDown = false;

function track(child: Subprocess): void {
  children.add(child);
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    // Alone on this signal, we keep its default meaning (terminate) after killing the runners. When the
    // node listens too, the signal is its to interpret (Ctrl-C in the chat stops a reply), and the exit hook
    // still cleans up if it ends the process.
    const onSignal = () => {
      if (process.listenerCount(signal) > 1) return;
      killAll();
      process.off(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** True once this process is ending (exit, or a terminating signal): crashed runners are not restarted. */
export function isShuttingDown(): boolean {
  return shuttingDown;
}

function killAll(): void {
  shuttingDown = true;
  for (const child of children) child.kill("SIGKILL");
  children.clear();
}
