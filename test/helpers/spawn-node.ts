// Start `exo start` node processes for integration tests, wait for their `ready` line, and make sure
// none outlives its test file. Uses the compiled binary when NODE_BIN is set.
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { waitFor } from "./wait.ts";

const REPO_ROOT = resolve(import.meta.dir, "../..");

export interface SpawnNodeOptions {
  /** Arguments after `start` (e.g. ["--node-id", "a", "--port", "0", "--config", path]). */
  args?: string[];
  /** Extra environment; EXO_HOME defaults to a fresh temp dir, EXO_LOG_LEVEL to 3 (info). */
  env?: Record<string, string>;
  cwd?: string;
  /** Executable to run instead of `bun src/main.ts` (default: env NODE_BIN when set). */
  bin?: string;
  /** Verb to run (default "start"; "" runs bare `exo` with the args). */
  verb?: string;
  /** How long to wait for the ready line (default 20 s). */
  readyTimeoutMs?: number;
}

export interface SpawnedNode {
  nodeId: string;
  port: number;
  apiPort: number;
  proc: Subprocess<"ignore", "pipe", "pipe">;
  /** Everything the node wrote so far (stdout and stderr lines, in arrival order). */
  logs(): string;
  kill(signal?: NodeJS.Signals | number): void;
  /** SIGTERM, wait for exit (SIGKILL after 5 s); resolves with the exit code. */
  stop(): Promise<number>;
  /** Exit code once the process ended, else null. */
  exitCode(): number | null;
}

const live = new Set<SpawnedNode>();
const spawnedThisFile: SpawnedNode[] = [];

/** Call once at the top of a test file that spawns nodes: every node is stopped in that file's afterAll. */
export function useNodes(): void {
  spawnedThisFile.length = 0;
  afterAll(async () => {
    await Promise.all([...live].map((n) => n.stop()));
    spawnedThisFile.length = 0;
  });
}

/** Wrap a test body: when it throws, print the logs of every node spawned in this file, then rethrow. */
export function withNodeLogs(fn: () => Promise<void> | void): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      for (const n of spawnedThisFile)
        console.error(`----- logs of node ${n.nodeId} (port ${n.port}) -----\n${n.logs()}`);
      throw err;
    }
  };
}

process.on("exit", () => {
  for (const n of live) n.kill("SIGKILL");
});

/** Start a node and resolve once it printed `{"event":"ready",...}`. Rejects (with its logs) if it exits first. */
export async function spawnNode(opts: SpawnNodeOptions = {}): Promise<SpawnedNode> {
  const ownHome = opts.env?.EXO_HOME === undefined ? mkdtempSync(join(tmpdir(), "exo-node-")) : undefined;
  const bin = opts.bin ?? process.env.NODE_BIN;
  const verb = opts.verb === "" ? [] : [opts.verb ?? "start"];
  const cmd = bin
    ? [bin, ...verb, ...(opts.args ?? [])]
    : [process.execPath, "src/main.ts", ...verb, ...(opts.args ?? [])];
  const env: Record<string, string> = { ...(process.env as Record<string, string>), EXO_LOG_LEVEL: "3", ...opts.env };
  if (ownHome) env.EXO_HOME = ownHome;
  const proc = Bun.spawn(cmd, { cwd: opts.cwd ?? REPO_ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });

  const lines: string[] = [];
  let ready: { node_id: string; port: number; api_port: number } | undefined;
  const pump = async (stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of stream) {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    }
    if (rest) onLine(rest);
  };
  void pump(proc.stdout, (line) => {
    lines.push(line);
    if (!ready && line.startsWith("{")) {
      try {
        const ev = JSON.parse(line);
        if (ev.event === "ready") ready = ev;
      } catch {
        // not the ready line: keep it as a log line
      }
    }
  });
  void pump(proc.stderr, (line) => lines.push(line));

  let killedByTest = false;
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    live.delete(node);
    if (ownHome) rmSync(ownHome, { recursive: true, force: true });
  };
  const node: SpawnedNode = {
    nodeId: "",
    port: 0,
    apiPort: 0,
    proc,
    logs: () => lines.join("\n"),
    kill: (signal = "SIGTERM") => {
      killedByTest = true;
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
    exitCode: () => proc.exitCode ?? (proc.signalCode ? 128 : null),
    stop: async () => {
      node.kill("SIGTERM");
      const timer = setTimeout(() => node.kill("SIGKILL"), 5000);
      const code = await proc.exited;
      clearTimeout(timer);
      cleanup();
      return code;
    },
  };
  live.add(node);
  spawnedThisFile.push(node);
  void proc.exited.then((code) => {
    if (!ready) return cleanup();
    // A node that dies on its own mid-test is the first thing to look at: show why.
    if (!killedByTest && code !== 0)
      console.error(`----- node ${node.nodeId} exited with code ${code} -----\n${node.logs()}`);
  });

  try {
    await waitFor(() => ready !== undefined || proc.exitCode !== null || proc.signalCode !== null, {
      timeoutMs: opts.readyTimeoutMs ?? 20_000,
      what: `ready line from ${cmd.join(" ")}`,
    });
  } catch (err) {
    await node.stop();
    throw new Error(`${(err as Error).message}\n${node.logs()}`);
  }
  if (!ready) {
    await proc.exited;
    throw new Error(`node exited with code ${proc.exitCode} before it was ready: ${cmd.join(" ")}\n${node.logs()}`);
  }
  node.nodeId = ready.node_id;
  node.port = ready.port;
  node.apiPort = ready.api_port;
  return node;
}

/** Run one `exo` command to completion (`bun src/main.ts …`, or NODE_BIN when set). */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = process.env.NODE_BIN;
  const cmd = bin ? [bin, ...args] : [process.execPath, "src/main.ts", ...args];
  const proc = Bun.spawn(cmd, {
    cwd: REPO_ROOT,
    env: { ...(process.env as Record<string, string>), ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 30_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}
