// `exo run` as a user runs it, joining a second node (`exo start`) on 127.0.0.1, both on the fake engine:
// --prompt prints the cluster's answer and exits 0; the interactive chat works through a pseudo-terminal (`script`).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import type { Subprocess } from "bun";
import { liveRequests } from "../helpers/cluster-nodes.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const REPO_ROOT = resolve(import.meta.dir, "../..");
const MODEL = "exo-tiny-chat";
const dir = mkdtempSync(join(tmpdir(), "exo-run-cli-"));
const runs: Subprocess[] = [];
let b: SpawnedNode;
let runArgs: string[];

beforeAll(async () => {
  b = await spawnNode({
    args: [
      "--node-id",
      "b",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--api-host",
      "127.0.0.1",
      "--api-port",
      "0",
      "--engine",
      "fake",
      "--memory-mb",
      "3000",
    ],
  });
  const config = join(dir, "peers.json");
  writeFileSync(config, JSON.stringify({ peers: { b: { address: "127.0.0.1", port: b.port } } }));
  runArgs = ["--node-id", "a", "--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];
  runArgs.push("--config", config, "--engine", "fake", "--memory-mb", "3000", "--health-interval-ms", "500");
}, 30_000);

afterAll(() => {
  for (const p of runs) if (p.exitCode === null) p.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

/** Start a process with piped stdio and a fresh EXO_HOME; it is killed in afterAll if still running. */
function start(cmd: string[]) {
  const home = mkdtempSync(join(dir, "home-"));
  const proc = Bun.spawn(cmd, {
    cwd: REPO_ROOT,
    env: { ...process.env, EXO_HOME: home },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  runs.push(proc);
  const out = { stdout: "", stderr: "" };
  const pump = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out[key] += decoder.decode(chunk, { stream: true });
  };
  const pumped = Promise.all([pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr")]);
  return { proc, out, pumped };
}

/** The answer node b's API gives to one user message (greedy), for comparison. */
async function apiAnswer(content: string, maxTokens: number): Promise<string> {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${b.apiPort}/v1`, apiKey: "unused", maxRetries: 0 });
  const done = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content }],
    temperature: 0,
    max_tokens: maxTokens,
  });
  return done.choices[0]!.message.content ?? "";
}

describe("exo run", () => {
  test(
    "--prompt places the model on both nodes, prints the cluster's answer on stdout and exits 0",
    withNodeLogs(async () => {
      const run = start([
        process.execPath,
        "src/main.ts",
        "run",
        MODEL,
        "--prompt",
        "Hello there",
        "--max-tokens",
        "12",
        ...runArgs,
      ]);
      const code = await run.proc.exited;
      await run.pumped;
      if (code !== 0) console.error(run.out.stderr);
      expect(code).toBe(0);
      expect(run.out.stderr).toContain(`preparing ${MODEL}: a ready, b ready`);
      expect(run.out.stdout).toBe(`${await apiAnswer("Hello there", 12)}\n`);
      expect(run.out.stdout.length).toBeGreaterThan(1);
    }),
    60_000,
  );

  test(
    "chats through a pseudo-terminal: Ctrl-C stops a reply (node b frees it) without ending the chat, Ctrl-D quits",
    withNodeLogs(async () => {
      const command = [
        process.execPath,
        "src/main.ts",
        "run",
        "--max-tokens",
        "400",
        "--fake-step-ms",
        "20",
        ...runArgs,
      ].join(" ");
      const run = start(["script", "-q", "-e", "-c", command, "/dev/null"]);
      const type = (text: string) => {
        run.proc.stdin.write(text);
        run.proc.stdin.flush();
      };
      const shown = () => run.out.stdout;
      const prompts = () => shown().split(">>> ").length - 1;
      await waitFor(() => prompts() === 1, { what: "the first prompt", timeoutMs: 30_000 });
      expect(shown()).toContain(`Chatting with ${MODEL}`);

      type("tell me a long story\r");
      const before = shown().length;
      await waitFor(() => shown().length > before + 40, { what: "the reply to stream" });
      type("\x03");
      await waitFor(() => shown().includes("[stopped]"), { what: "the reply to stop" });
      await waitFor(
        async () => {
          const state = await liveRequests(b);
          return state.stages + state.engine + state.coordinating === 0;
        },
        { what: "node b to free the stopped request", timeoutMs: 2000 },
      );

      await waitFor(() => prompts() === 2, { what: "the prompt after the stopped reply" });
      type("\x03");
      await waitFor(() => shown().includes("Ctrl-D quits"), { what: "the hint after Ctrl-C at the prompt" });
      expect(run.proc.exitCode).toBeNull();

      type("\x04");
      expect(await run.proc.exited).toBe(0);
    }),
    60_000,
  );

  test(
    "chats with the embedded model in a pseudo-terminal, answering each turn with the trained answer",
    withNodeLogs(async () => {
      const alone = [
        "--node-id",
        "solo",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-host",
        "127.0.0.1",
        "--api-port",
        "0",
      ];
      const run = start([
        "script",
        "-q",
        "-e",
        "-c",
        [process.execPath, "src/main.ts", "run", ...alone].join(" "),
        "/dev/null",
      ]);
      const type = (text: string) => {
        run.proc.stdin.write(text);
        run.proc.stdin.flush();
      };
      const prompts = () => run.out.stdout.split(">>> ").length - 1;
      await waitFor(() => prompts() === 1, { what: "the first prompt", timeoutMs: 30_000 });
      type("count from 3 to 9\r");
      await waitFor(() => prompts() === 2, { what: "the first answer", timeoutMs: 30_000 });
      type("what is 23+41\r");
      await waitFor(() => prompts() === 3, { what: "the second answer", timeoutMs: 30_000 });
      type("\x04");
      expect(await run.proc.exited).toBe(0);
      const turns = run.out.stdout
        .split(">>> ")
        .slice(1, 3)
        .map((t) => t.split("\r\n").slice(1, -1).join("\n"));
      expect(turns).toEqual(["3 4 5 6 7 8 9", "64"]);
    }),
    60_000,
  );
});
