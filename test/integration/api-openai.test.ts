// The OpenAI API of a real node on the embedded model (MLX runner), driven by the official `openai` client:
// answers, streams, usage, max_tokens, stop strings, determinism and seeds, no special tokens, errors, auth.
// Then `exo run --prompt` joins that node as a second stage and prints the same answer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";

useNodes();

const REPO_ROOT = resolve(import.meta.dir, "../..");
const MODEL = "exo-tiny-chat";
const KEY = "integration-key";
// The embedded model's tokenizer is byte-level with these special tokens (configs/default-model/README.md).
const SPECIALS = ["<|begin|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|pad|>"];
const dir = mkdtempSync(join(tmpdir(), "exo-api-openai-"));
let node: SpawnedNode;
let client: OpenAI;

beforeAll(async () => {
  node = await spawnNode({
    args: [
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
      "--memory-mb",
      "4000",
    ],
    env: { EXO_API_KEY: KEY },
  });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${node.apiPort}/v1`, apiKey: KEY, maxRetries: 0 });
}, 30_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const user = (content: string) => [{ role: "user" as const, content }];

async function greedy(content: string, extra: Partial<OpenAI.ChatCompletionCreateParamsNonStreaming> = {}) {
  return client.chat.completions.create({ model: MODEL, messages: user(content), temperature: 0, ...extra });
}

async function streamed(content: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`http://127.0.0.1:${node.apiPort}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: user(content), temperature: 0, stream: true, ...extra }),
  });
  const frames = (await res.text())
    .split("\n\n")
    .filter((f) => f.startsWith("data: "))
    .map((f) => f.slice(6));
  const chunks = frames.filter((f) => f !== "[DONE]").map((f) => JSON.parse(f) as OpenAI.ChatCompletionChunk);
  return { frames, chunks, text: chunks.map((c) => c.choices[0]?.delta.content ?? "").join("") };
}

async function apiError(run: () => Promise<unknown>) {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(OpenAI.APIError);
    return err as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected the request to fail");
}

describe("a node serving the embedded model over the OpenAI API", () => {
  test(
    "answers a chat with the trained answer, finish_reason stop and usage counted in tokens",
    withNodeLogs(async () => {
      const done = await greedy("count from 3 to 9");
      expect(done.choices[0]!.message.content).toBe("3 4 5 6 7 8 9");
      expect(done.choices[0]!.finish_reason).toBe("stop");
      // Byte-level tokens: <|begin|><|user|> + 17 bytes + <|end|><|assistant|>; the answer's 13 bytes + <|end|>.
      expect(done.usage).toEqual({ prompt_tokens: 21, completion_tokens: 14, total_tokens: 35 });
    }),
    60_000,
  );

  test(
    "streams chunk objects that add up to the same answer, a usage chunk, then [DONE]",
    withNodeLogs(async () => {
      const { frames, chunks, text } = await streamed("count from 3 to 9", { stream_options: { include_usage: true } });
      expect(frames.at(-1)).toBe("[DONE]");
      expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
      expect(text).toBe("3 4 5 6 7 8 9");
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 21, completion_tokens: 14, total_tokens: 35 });
    }),
    30_000,
  );

  test(
    "max_tokens ends the answer with finish_reason length after exactly that many tokens",
    withNodeLogs(async () => {
      const done = await greedy("count from 3 to 9", { max_tokens: 3 });
      expect(done.choices[0]!.message.content).toBe("3 4");
      expect(done.choices[0]!.finish_reason).toBe("length");
      expect(done.usage!.completion_tokens).toBe(3);
    }),
    30_000,
  );

  test(
    "a stop string ends the answer before it, streamed or not",
    withNodeLogs(async () => {
      const done = await greedy("count from 3 to 9", { stop: [" 6"] });
      expect(done.choices[0]!.message.content).toBe("3 4 5");
      expect(done.choices[0]!.finish_reason).toBe("stop");
      expect((await streamed("count from 3 to 9", { stop: " 6" })).text).toBe("3 4 5");
    }),
    30_000,
  );

  test(
    "temperature 0 repeats itself, a fixed seed reproduces a sampled answer, and seeds do sample",
    withNodeLogs(async () => {
      const prompt = "tell me something new";
      expect((await greedy(prompt)).choices[0]!.message.content).toBe(
        (await greedy(prompt)).choices[0]!.message.content!,
      );
      const sampled = async (seed: number) =>
        (
          await client.chat.completions.create({
            model: MODEL,
            messages: user(prompt),
            temperature: 2,
            seed,
            max_tokens: 24,
          })
        ).choices[0]!.message.content;
      const first = await sampled(7);
      expect(await sampled(7)).toBe(first);
      const others = await Promise.all([1, 2, 3, 4].map(sampled));
      expect(new Set([first, ...others]).size).toBeGreaterThan(1);
    }),
    60_000,
  );

  test(
    "special tokens never appear in content, even when sampling wildly",
    withNodeLogs(async () => {
      const texts = await Promise.all(
        [11, 12, 13].map(async (seed) => (await streamed("hello", { temperature: 2, seed, max_tokens: 40 })).text),
      );
      texts.push((await greedy("hello")).choices[0]!.message.content ?? "");
      for (const text of texts) for (const special of SPECIALS) expect(text).not.toContain(special);
    }),
    60_000,
  );

  test(
    "refuses n: 2, a bad temperature and missing messages naming the parameter, and an unknown model with 404",
    withNodeLogs(async () => {
      const n2 = await apiError(() => client.chat.completions.create({ model: MODEL, messages: user("hi"), n: 2 }));
      expect([n2.status, n2.param]).toEqual([400, "n"]);
      const hot = await apiError(() =>
        client.chat.completions.create({ model: MODEL, messages: user("hi"), temperature: -1 }),
      );
      expect([hot.status, hot.param]).toEqual([400, "temperature"]);
      const none = await apiError(() => client.chat.completions.create({ model: MODEL } as never));
      expect([none.status, none.param]).toEqual([400, "messages"]);
      const unknown = await apiError(() => client.chat.completions.create({ model: "gpt-4o", messages: user("hi") }));
      expect([unknown.status, unknown.code]).toEqual([404, "model_not_found"]);
      const bad = await fetch(`http://127.0.0.1:${node.apiPort}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}` },
        body: "{oops",
      });
      expect(bad.status).toBe(400);
    }),
    30_000,
  );

  test(
    "requires the API key on every route but /healthcheck",
    withNodeLogs(async () => {
      const anonymous = new OpenAI({ baseURL: `http://127.0.0.1:${node.apiPort}/v1`, apiKey: "wrong", maxRetries: 0 });
      expect((await apiError(() => anonymous.models.list())).status).toBe(401);
      expect((await fetch(`http://127.0.0.1:${node.apiPort}/healthcheck`)).status).toBe(200);
      expect((await client.models.list()).data.map((m) => m.id)).toContain(MODEL);
    }),
    30_000,
  );

  test(
    "exo run --prompt joins this node as a second stage and prints the trained answer",
    withNodeLogs(async () => {
      const config = join(dir, "peers.json");
      writeFileSync(config, JSON.stringify({ peers: { solo: { address: "127.0.0.1", port: node.port } } }));
      const args = [
        MODEL,
        "--prompt",
        "what is 23+41",
        "--node-id",
        "runner",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-host",
        "127.0.0.1",
      ];
      args.push("--api-port", "0", "--config", config, "--memory-mb", "4000");
      const run = Bun.spawn([process.execPath, "src/main.ts", "run", ...args], {
        cwd: REPO_ROOT,
        env: { ...process.env, EXO_HOME: mkdtempSync(join(dir, "home-")) },
        stdout: "pipe",
        stderr: "pipe",
      });
      try {
        const [stdout, stderr, code] = await Promise.all([
          new Response(run.stdout).text(),
          new Response(run.stderr).text(),
          run.exited,
        ]);
        if (code !== 0) console.error(stderr);
        expect(code).toBe(0);
        expect(stdout).toBe("64\n");
        expect(stderr).toContain(`preparing ${MODEL}: runner ready, solo ready`);
      } finally {
        if (run.exitCode === null) run.kill("SIGKILL");
      }
    }),
    60_000,
  );
});
