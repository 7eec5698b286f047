// The HTTP app in-process (app(new Request(...))) over a scripted fake InferenceService: shapes, SSE, errors.
import { describe, expect, test } from "bun:test";
import { createApp, type AppOptions } from "../../../src/api/app.ts";
import { NodeError } from "../../../src/errors.ts";
import { fakeDeps, type Script } from "../../helpers/fake-inference.ts";
import type { GenerateRequest } from "../../../src/cluster/types.ts";

const URL_BASE = "http://exo.test";
const chatBody = { model: "tiny-chat", messages: [{ role: "user", content: "hello there" }] };

function setup(script?: (req: GenerateRequest) => Script, options: AppOptions = {}) {
  const fake = fakeDeps(script);
  return { ...fake, app: createApp(fake.deps, { keepAliveMs: 1000, headerWaitMs: 50, ...options }) };
}

function post(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return new Request(URL_BASE + path, {
    method: "POST",
    body: text,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Split an SSE body into its frames: data payloads (parsed unless [DONE]) and comments. */
function frames(text: string): Array<{ data?: unknown; comment?: string }> {
  expect(text.endsWith("\n\n")).toBe(true);
  return text
    .slice(0, -2)
    .split("\n\n")
    .map((frame) => {
      if (frame.startsWith(":")) return { comment: frame.slice(1).trim() };
      expect(frame.startsWith("data: ")).toBe(true);
      const payload = frame.slice(6);
      return { data: payload === "[DONE]" ? "[DONE]" : JSON.parse(payload) };
    });
}

/** Poll `condition` until it holds or `timeoutMs` passes. */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(2);
  }
}

const pieces = (words: string[]): Script => ({ pieces: words, promptTokens: 5 });

/** A response body as JSON (typed loosely: tests assert on its shape). */
const body = (res: Response): Promise<any> => res.json();

describe("chat completions", () => {
  test("answers a non-streamed request with a chat.completion carrying content, finish_reason and usage", async () => {
    const { app, calls } = setup();
    const res = await app(post("/v1/chat/completions", { ...chatBody, temperature: 0, seed: 7, stop: "zzz" }));
    expect(res.status).toBe(200);
    const json = await body(res);
    expect(json.object).toBe("chat.completion");
    expect(json.id).toMatch(/^chatcmpl-/);
    expect(json.model).toBe("tiny-chat");
    expect(json.choices[0].message).toMatchObject({ role: "assistant", content: "You said: hello there" });
    expect(json.choices[0].finish_reason).toBe("stop");
    expect(json.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
    expect(calls[0]!.request.sampling).toEqual({ temperature: 0, topP: 1, topK: 0, seed: 7 });
    expect(calls[0]!.request.stop).toEqual(["zzz"]);
  });

  test("reports finish_reason length when the service stops at max_tokens", async () => {
    const { app, calls } = setup();
    const json = await body(await app(post("/v1/chat/completions", { ...chatBody, max_tokens: 2 })));
    expect(calls[0]!.request.maxTokens).toBe(2);
    expect(json.choices[0].message.content).toBe("You said:");
    expect(json.choices[0].finish_reason).toBe("length");
  });

  test("streams a role chunk, one chunk per piece, a finish chunk, a usage chunk and [DONE]", async () => {
    const { app } = setup(() => pieces(["Hel", "lo", "!"]));
    const res = await app(
      post("/v1/chat/completions", { ...chatBody, stream: true, stream_options: { include_usage: true } }),
    );
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const list = frames(await res.text());
    const chunks = list.slice(0, -1).map((f) => f.data as Record<string, any>);
    expect(list.at(-1)!.data).toBe("[DONE]");
    expect(new Set(chunks.map((c) => c.object))).toEqual(new Set(["chat.completion.chunk"]));
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.slice(1, 4).map((c) => c.choices[0].delta.content)).toEqual(["Hel", "lo", "!"]);
    expect(chunks[4]!.choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(chunks.slice(0, 5).every((c) => c.usage === null)).toBe(true);
    expect(chunks[5]!.choices).toEqual([]);
    expect(chunks[5]!.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
  });

  test("a stream without include_usage has no usage field and no usage chunk", async () => {
    const { app } = setup(() => pieces(["a", "b"]));
    const list = frames(await (await app(post("/v1/chat/completions", { ...chatBody, stream: true }))).text());
    expect(list).toHaveLength(5);
    expect(list.slice(0, -1).every((f) => !("usage" in (f.data as object)))).toBe(true);
  });
});

describe("completions", () => {
  test("answers a prompt with a text_completion, streamed or not", async () => {
    const { app, calls } = setup(() => pieces([" upon", " a", " time"]));
    const json = await body(await app(post("/v1/completions", { model: "tiny-chat", prompt: "Once" })));
    expect(json).toMatchObject({
      object: "text_completion",
      choices: [{ text: " upon a time", finish_reason: "stop" }],
    });
    expect(json.id).toMatch(/^cmpl-/);
    expect(calls[0]!.request.prompt).toBe("Once");
    const list = frames(
      await (await app(post("/v1/completions", { model: "tiny-chat", prompt: "Once", stream: true }))).text(),
    );
    const chunks = list.slice(0, -1).map((f) => f.data as Record<string, any>);
    expect(chunks.map((c) => c.choices[0].text).join("")).toBe(" upon a time");
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe("stop");
    expect(chunks.every((c) => c.object === "text_completion")).toBe(true);
  });
});

describe("errors", () => {
  test("an unknown model is a 404 model_not_found, streamed or not, never a fallback", async () => {
    const { app, calls } = setup();
    for (const stream of [false, true]) {
      const res = await app(post("/v1/chat/completions", { ...chatBody, model: "gpt-4o", stream }));
      expect(res.status).toBe(404);
      const { error } = await body(res);
      expect(error.code).toBe("model_not_found");
      expect(error.message).toContain("gpt-4o");
    }
    expect(calls.map((c) => c.request.modelId)).toEqual(["gpt-4o", "gpt-4o"]);
  });

  test("malformed JSON, n=2 and an empty body are 400s in OpenAI's envelope", async () => {
    const { app } = setup();
    const bad = await app(post("/v1/chat/completions", "{not json"));
    expect(bad.status).toBe(400);
    expect((await body(bad)).error).toMatchObject({ type: "invalid_request_error", param: null });
    const n2 = await app(post("/v1/chat/completions", { ...chatBody, n: 2 }));
    expect(n2.status).toBe(400);
    expect((await body(n2)).error.param).toBe("n");
    expect((await app(post("/v1/chat/completions", ""))).status).toBe(400);
  });

  test("a body over the limit is a 413, with or without a content-length", async () => {
    const { app } = setup(undefined, { maxBodyBytes: 100 });
    const big = { ...chatBody, messages: [{ role: "user", content: "x".repeat(200) }] };
    expect((await app(post("/v1/chat/completions", big))).status).toBe(413);
    const chunked = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(JSON.stringify(big)));
        c.close();
      },
    });
    const res = await app(new Request(`${URL_BASE}/v1/chat/completions`, { method: "POST", body: chunked }));
    expect(res.status).toBe(413);
    expect((await body(res)).error.code).toBe("request_too_large");
  });

  const statuses: Array<[string, NodeError, number, string]> = [
    ["capacity", new NodeError("E_CAPACITY", "too many requests in flight"), 429, "capacity_exceeded"],
    ["a peer down", new NodeError("E_PEER_DOWN", "node b is down"), 503, "peer_down"],
    ["a crashed runner", new NodeError("E_RUNNER_CRASHED", "runner exited"), 503, "runner_crashed"],
    ["a model too big", new NodeError("E_MODEL_TOO_BIG", "needs 40 GB, has 8 GB"), 503, "model_too_big"],
    ["a timeout", new NodeError("E_TIMEOUT", "no token in 30 s"), 504, "timeout"],
    ["a repo missing upstream", new NodeError("E_DOWNLOAD_NOT_FOUND", "no such repo org/x"), 404, "model_not_found"],
    ["an unreachable hub", new NodeError("E_DOWNLOAD_OFFLINE", "huggingface.co unreachable"), 503, "download_offline"],
    ["a full disk", new NodeError("E_DOWNLOAD_DISK_FULL", "needs 4 GB more"), 507, "disk_full"],
    ["an unmapped node error", new NodeError("E_WEIGHTS", "tensor missing"), 500, "weights"],
  ];
  for (const [what, error, status, code] of statuses) {
    test(`${what} before the first token is a ${status} for streamed and plain requests`, async () => {
      const { app } = setup(() => ({ pieces: ["x"], failAtStart: error }));
      for (const stream of [false, true]) {
        const res = await app(post("/v1/chat/completions", { ...chatBody, stream }));
        expect(res.status).toBe(status);
        // A full admission queue tells the client when to come back; nothing else does.
        expect(res.headers.get("retry-after")).toBe(status === 429 ? "1" : null);
        expect((await body(res)).error).toMatchObject({ code, message: error.message });
      }
    });
  }

  test("an unexpected error is a 500 that does not leak the stack", async () => {
    const boom = new Error("secret internals at /home/x/file.ts:12");
    const { app } = setup(() => ({ pieces: ["x"], failAtStart: boom as NodeError }));
    const res = await app(post("/v1/chat/completions", chatBody));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain("secret");
    expect(JSON.parse(text).error.type).toBe("server_error");
  });

  test("an error after the first chunk becomes an SSE error event followed by [DONE]", async () => {
    const failure = new NodeError("E_PEER_DOWN", "node b went away");
    const { app } = setup(() => ({ pieces: ["a", "b", "c"], failAfter: { pieces: 2, error: failure } }));
    const res = await app(post("/v1/chat/completions", { ...chatBody, stream: true }));
    expect(res.status).toBe(200);
    const list = frames(await res.text());
    expect(list.at(-1)!.data).toBe("[DONE]");
    expect(list.at(-2)!.data).toEqual({
      error: { message: "node b went away", type: "server_error", param: null, code: "peer_down" },
    });
    expect(list.slice(1, 3).map((f) => (f.data as any).choices[0].delta.content)).toEqual(["a", "b"]);
  });
});

describe("streaming lifecycle", () => {
  test("sends keep-alive comments while the first token is slow", async () => {
    const { app } = setup(() => ({ pieces: ["late"], firstDelayMs: 300 }), { keepAliveMs: 40, headerWaitMs: 20 });
    const res = await app(post("/v1/chat/completions", { ...chatBody, stream: true }));
    expect(res.status).toBe(200);
    const list = frames(await res.text());
    const firstData = list.findIndex((f) => f.data !== undefined);
    expect(firstData).toBeGreaterThan(0);
    expect(list.slice(0, firstData).every((f) => f.comment === "keep-alive")).toBe(true);
    expect(list.at(-1)!.data).toBe("[DONE]");
  });

  test("a client that stops reading mid-stream aborts the generation's signal", async () => {
    const { app, calls } = setup(() => ({ pieces: Array(50).fill("tok "), delayMs: 20 }));
    const res = await app(post("/v1/chat/completions", { ...chatBody, stream: true }));
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    expect(calls[0]!.signal.aborted).toBe(false);
    await reader.cancel();
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(await calls[0]!.ended).toBe("aborted");
  });

  test("a request whose own signal aborts (client gone) aborts a non-streamed generation", async () => {
    const { app, calls } = setup(() => ({ pieces: Array(50).fill("tok "), delayMs: 20 }));
    const client = new AbortController();
    const req = new Request(`${URL_BASE}/v1/chat/completions`, {
      method: "POST",
      body: JSON.stringify(chatBody),
      signal: client.signal,
    });
    const pending = app(req);
    await until(() => calls.length > 0, 2000);
    client.abort();
    expect(await calls[0]!.ended).toBe("aborted");
    expect((await pending).status).toBeGreaterThanOrEqual(400);
  });
});
