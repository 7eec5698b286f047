// The runner child (`exo runner`): hosts one ShardEngine, reads call frames on stdin, answers on stdout.
// It exits when stdin closes or its parent dies, so a runner never outlives the node that started it.
import { existsSync } from "node:fs";
import { errorCode } from "../errors.ts";
import { logger } from "../log.ts";
import { encodeFrame, FrameDecoder } from "../protocol/frame.ts";
import type { Message } from "../protocol/types.ts";
import { createFakeEngine, type FakeEngineOptions } from "./fake-engine.ts";
import { matchesFault, type RunnerFault } from "./runner-fault.ts";
import { watchParent } from "./runner-parent.ts";
import { decodeRunnerCall, encodeRunnerReply, type RunnerCall, type RunnerReply } from "./runner-wire.ts";
import type { ShardEngine } from "./types.ts";

const log = logger("engine");

export interface RunnerMainOptions {
  engine: "mlx" | "fake";
  maxLiveRequests?: number;
  /** Most decode steps in one forward (1: every step on its own, as before batching). */
  maxBatch?: number;
  fake?: FakeEngineOptions;
  /** Test-only: a REAL native abort when a step matches (see runner-fault.ts). */
  fault?: RunnerFault;
  /** The node's pid; the runner exits when it is gone. */
  parentPid?: number;
}

/** Serves calls until stdin reaches EOF or the parent dies; resolves once the engine is closed. */
export async function runRunner(opts: RunnerMainOptions): Promise<void> {
  // Frames own stdout: stray console output would corrupt them, so it goes to stderr.
  console.log = console.error;
  console.info = console.error;
  const out = Bun.stdout.writer();
  const send = (reply: RunnerReply) => {
    out.write(encodeFrame(encodeRunnerReply(reply)));
    void out.flush();
  };
  // Ctrl-C reaches the whole foreground process group: it is the node's to interpret (stop a reply), not
  // a reason to drop the shard. The runner ends with its parent (stdin EOF, parent watch) or by SIGTERM/SIGKILL.
  for (const signal of ["SIGINT", "SIGHUP"] as const)
    process.on(signal, () => log.debug(`runner ${process.pid} ignores ${signal}`));
  const stopWatch = watchParent(opts.parentPid);
  const engine = await createEngine(opts);
  send({ kind: "hello", pid: process.pid, engine: opts.engine });
  log.debug(`runner ${process.pid} ready (${opts.engine})`);

  const decoder = new FrameDecoder();
  const inflight = new Set<Promise<void>>();
  try {
    for await (const chunk of Bun.stdin.stream()) {
      for (const msg of decoder.push(chunk)) {
        const call = decodeOrRefuse(msg, send);
        if (!call) continue;
        const done = serve(engine, call, send, opts.fault).finally(() => inflight.delete(done));
        inflight.add(done);
      }
    }
  } finally {
    stopWatch();
    await Promise.allSettled(inflight);
    await engine.close();
    await out.end();
    log.debug(`runner ${process.pid} stopped: stdin closed`);
  }
}

// --- internal ---

async function createEngine(opts: RunnerMainOptions): Promise<ShardEngine> {
  if (opts.engine === "fake")
    return createFakeEngine({ ...opts.fake, maxLiveRequests: opts.maxLiveRequests ?? opts.fake?.maxLiveRequests });
  const { createLocalEngine } = await import("./local-engine.ts");
  return createLocalEngine({
    maxLiveRequests: opts.maxLiveRequests,
    ...(opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch }),
  });
}

async function crash(): Promise<never> {
  const { nativeAbort } = await import("./native-abort.ts");
  return nativeAbort();
}

function decodeOrRefuse(msg: Message, send: (r: RunnerReply) => void): RunnerCall | undefined {
  try {
    return decodeRunnerCall(msg);
  } catch (err) {
    const id = msg.fields.id;
    if (typeof id !== "number") throw err;
    send({ kind: "error", id, code: errorCode(err), message: (err as Error).message });
    return undefined;
  }
}

/** Runs one call and sends its reply; errors become ERROR replies (this is the runner's boundary). */
async function serve(
  engine: ShardEngine,
  call: RunnerCall,
  send: (r: RunnerReply) => void,
  fault?: RunnerFault,
): Promise<void> {
  try {
    switch (call.op) {
      case "load":
        if (fault?.kind === "abort-on-load-if-file" && existsSync(fault.path)) await crash();
        await engine.load(call.shard, (fraction, detail) => send({ kind: "progress", id: call.id, fraction, detail }));
        return send({ kind: "ok", id: call.id });
      case "step": {
        if (fault && matchesFault(fault, call.requestId, call.input)) await crash();
        const hints = call.stages === undefined ? undefined : { stages: call.stages };
        const output = await engine.step(call.requestId, call.input, call.sampling, hints);
        return send({ kind: "output", id: call.id, output });
      }
      case "end":
        await engine.end(call.requestId);
        return send({ kind: "ok", id: call.id });
      case "health":
        return send({
          kind: "health",
          id: call.id,
          liveRequests: await engine.liveRequests(),
          loaded: engine.loaded() ?? null,
          ...(engine.batchStats ? { batch: await engine.batchStats() } : {}),
        });
    }
  } catch (err) {
    send({ kind: "error", id: call.id, code: errorCode(err), message: (err as Error)?.message ?? String(err) });
  }
}
