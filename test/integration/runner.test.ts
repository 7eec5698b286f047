// The runner child with the fake engine: contract, crash and restart, no orphans, a free event loop.
import { afterAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRunnerEngine, type RunnerEngine } from "../../src/engine/runner-client.ts";
import type { SamplingParams, ShardSpec } from "../../src/engine/types.ts";
import { isNodeError } from "../../src/errors.ts";
import { runEngineContract } from "../helpers/engine-contract.ts";
import { waitFor } from "../helpers/wait.ts";

const SHARD: ShardSpec = { modelId: "fake", modelDir: "/nonexistent", layerStart: 0, layerEnd: 4, nLayers: 4 };
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

runEngineContract("runner(fake)", async () => ({
  makeEngine: async ({ maxLiveRequests }) =>
    createRunnerEngine({ engine: "fake", maxLiveRequests, fake: { vocabSize: 100, hiddenSize: 8 } }),
  shard: SHARD,
  vocabSize: 100,
  hiddenSize: 8,
}));

/** True once `pid` no longer runs (gone from /proc, or a zombie waiting for its reaper). */
function processGone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z") ?? true;
  } catch {
    return true;
  }
}

/** User-mode CPU time of `pid` in clock ticks (field 14 of /proc/<pid>/stat). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]);
}

describe("runner child process", () => {
  const engines: RunnerEngine[] = [];
  const make = (fake: Parameters<typeof createRunnerEngine>[0]["fake"] = {}) => {
    const engine = createRunnerEngine({ engine: "fake", fake });
    engines.push(engine);
    return engine;
  };
  afterAll(async () => {
    await Promise.allSettled(engines.map((e) => e.close()));
  });

  test("a killed runner fails the calls in flight with E_RUNNER_CRASHED, restarts with the shard, and the next call works", async () => {
    const crashes: string[] = [];
    const engine = createRunnerEngine({
      engine: "fake",
      fake: { stepDelayMs: 10_000 },
      onCrash: (c) => crashes.push(c.exit.signal ?? ""),
    });
    engines.push(engine);
    await engine.load(SHARD);
    const firstPid = engine.pid()!;
    const inflight = ["a", "b"].map((id) =>
      engine.step(id, { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e),
    );
    await waitFor(async () => (await engine.liveRequests()) === 2, { what: "two live requests in the runner" });
    process.kill(firstPid, "SIGKILL");
    for (const err of await Promise.all(inflight)) {
      expect(isNodeError(err) && err.code).toBe("E_RUNNER_CRASHED");
      expect(String(err)).toContain(`pid ${firstPid}) died with signal SIGKILL`);
    }
    expect(crashes).toEqual(["SIGKILL"]);
    expect(await engine.liveRequests()).toBe(0);
    expect(engine.pid()).not.toBe(firstPid);
    expect(engine.loaded()).toEqual(SHARD);
    const lost = await engine.step("a", { kind: "tokens", tokens: [2] }, GREEDY).catch((e: unknown) => e);
    expect(isNodeError(lost) && lost.code).toBe("E_RUNNER_CRASHED");
    await engine.end("a");
    await engine.end("b");
    engine.close();
  });

  test("after a restart, requests run again end to end", async () => {
    const engine = make();
    await engine.load(SHARD);
    const before = await engine.step("x", { kind: "tokens", tokens: [4, 5] }, GREEDY);
    process.kill(engine.pid()!, "SIGKILL");
    await waitFor(async () => (await engine.liveRequests()) === 0 && engine.pid(), { what: "a restarted runner" });
    expect(await engine.step("y", { kind: "tokens", tokens: [4, 5] }, GREEDY)).toEqual(before);
    await engine.end("y");
  });

  test("a runner that leaves a call unanswered past callTimeoutMs is killed and restarted", async () => {
    const engine = createRunnerEngine({ engine: "fake", fake: { stepBusyMs: 30_000 }, callTimeoutMs: 300 });
    engines.push(engine);
    await engine.load(SHARD);
    const hungPid = engine.pid();
    const err = await engine.step("hung", { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_RUNNER_CRASHED");
    expect(String(err)).toContain("(killed: no answer to a step call within 300 ms)");
    expect(await engine.liveRequests()).toBe(0);
    expect(engine.pid()).not.toBe(hungPid);
  });

  test("a shard whose re-load kills the restarted runner is dropped instead of crashing it again and again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "exo-runner-flag-"));
    const flag = join(dir, "abort-on-load");
    try {
      const crashes: string[] = [];
      const engine = createRunnerEngine({
        engine: "fake",
        fault: `abort-on-load-if-file:${flag}`,
        onCrash: (c) => crashes.push(c.exit.signal ?? ""),
      });
      engines.push(engine);
      await engine.load(SHARD);
      writeFileSync(flag, "");
      process.kill(engine.pid()!, "SIGKILL");
      await waitFor(() => crashes.length === 2 && engine.loaded() === undefined && engine.pid(), {
        what: "a runner without the shard after the re-load crash",
      });
      const idlePid = engine.pid();
      const err = await engine.step("r", { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e);
      expect(isNodeError(err) && err.code).toBe("E_RUNNER");
      expect(String(err)).toContain("no shard loaded");
      expect(crashes).toEqual(["SIGKILL", "SIGABRT"]);
      expect(engine.pid()).toBe(idlePid);
      rmSync(flag);
      await engine.load(SHARD);
      expect((await engine.step("r", { kind: "tokens", tokens: [1] }, GREEDY)).kind).toBe("token");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("close stops the runner process and later calls fail clearly", async () => {
    const engine = make();
    await engine.load(SHARD);
    const pid = engine.pid()!;
    await engine.close();
    await waitFor(() => processGone(pid), { what: `runner ${pid} to exit` });
    const err = await engine.step("z", { kind: "tokens", tokens: [1] }, GREEDY).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_RUNNER");
    expect(await engine.liveRequests()).toBe(0);
  });

  test("the parent's event loop keeps ticking while the runner's thread is blocked in a step", async () => {
    const engine = make({ stepBusyMs: 1000 });
    await engine.load(SHARD);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    await engine.step("busy", { kind: "tokens", tokens: [1] }, GREEDY);
    clearInterval(timer);
    await engine.end("busy");
    expect(ticks).toBeGreaterThan(20);
  });

  test("SIGINT sent to the runner (Ctrl-C reaches the whole process group) does not stop it", async () => {
    const crashes: number[] = [];
    const engine = createRunnerEngine({ engine: "fake", onCrash: (c) => crashes.push(c.pid) });
    engines.push(engine);
    await engine.load(SHARD);
    const pid = engine.pid()!;
    process.kill(pid, "SIGINT");
    process.kill(pid, "SIGHUP");
    for (const id of ["i1", "i2"])
      expect((await engine.step(id, { kind: "tokens", tokens: [1] }, GREEDY)).kind).toBe("token");
    expect(engine.pid()).toBe(pid);
    expect(processGone(pid)).toBe(false);
    expect(crashes).toEqual([]);
  });

  test("a parent that ends without closing its engine exits and leaves no runner process", async () => {
    const { parent, runnerPid } = await startParent({ finish: true });
    expect(await parent.exited).toBe(0);
    await waitFor(() => processGone(runnerPid), {
      timeoutMs: 5000,
      what: `runner ${runnerPid} to exit with its parent`,
    });
  });

  test("a parent that handles SIGINT itself keeps its runner, which still answers", async () => {
    const { parent, runnerPid, nextLine } = await startParent({ handleSigint: true });
    parent.kill("SIGINT");
    expect(JSON.parse(await nextLine())).toEqual({ afterSigint: "token", runnerPid });
    parent.kill("SIGKILL");
    await waitFor(() => processGone(runnerPid), {
      timeoutMs: 5000,
      what: `runner ${runnerPid} to exit after its parent`,
    });
  });

  for (const [signal, busy] of [
    ["SIGKILL", false],
    ["SIGTERM", false],
    ["SIGINT", false],
    ["SIGKILL", true],
  ] as const) {
    test(`a parent killed with ${signal}${busy ? " while its runner is blocked in a step" : ""} leaves no runner process`, async () => {
      const { parent, runnerPid } = await startParent(busy ? { stepBusyMs: 60_000, stepInFlight: true } : {});
      expect(processGone(runnerPid)).toBe(false);
      // A busy runner must be inside its step (burning CPU) before the parent dies.
      if (busy) await waitFor(() => cpuTicks(runnerPid) > 20, { what: `runner ${runnerPid} to be computing` });
      parent.kill(signal);
      await parent.exited;
      await waitFor(() => processGone(runnerPid), {
        timeoutMs: 5000,
        what: `runner ${runnerPid} to exit after its parent`,
      });
    });
  }
});

const parents: Subprocess[] = [];
afterAll(() => {
  for (const p of parents) p.kill("SIGKILL");
});

/** Starts test/helpers/runner-parent.ts (a stand-in node) and reads its runner's pid. */
async function startParent(opts: Record<string, unknown>) {
  const fixture = new URL("../helpers/runner-parent.ts", import.meta.url).pathname;
  const parent = Bun.spawn([process.execPath, fixture, JSON.stringify(opts)], { stdout: "pipe", stderr: "inherit" });
  parents.push(parent);
  const reader = parent.stdout.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the stand-in node closed its stdout");
      buffered += decoder.decode(value, { stream: true });
    }
    const line = buffered.slice(0, buffered.indexOf("\n"));
    buffered = buffered.slice(line.length + 1);
    return line;
  };
  const runnerPid = (JSON.parse(await nextLine()) as { runnerPid: number }).runnerPid;
  return { parent, runnerPid, nextLine };
}
