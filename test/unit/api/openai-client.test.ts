// The app served on port 0 by startApiServer and driven by the official `openai` npm client (plus raw fetch
// where the client hides the wire: [DONE], keep-alive comments, malformed bodies, exo's routes).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { createApp } from "../../../src/api/app.ts";
import { startApiServer, type ApiServer } from "../../../src/api/server.ts";
import { echoScript, fakeDeps, type Call } from "../../helpers/fake-inference.ts";
import type { GenerateRequest } from "../../../src/cluster/types.ts";

const KEY = "test-key";
let server: ApiServer;
let calls: Call[];
let client: OpenAI;
let base: string;

/** The user's text picks the script: "slow" → a long prefill, "long" → many slow pieces, else an echo. */
function script(req: GenerateRequest) {
  const text = req.messages?.at(-1)?.content;
  if (text === "slow") return { pieces: ["finally"], firstDelayMs: 400 };
  if (text === "long") return { pieces: Array(200).fill("word "), delayMs: 10 };
  return echoScript(req);
}

beforeAll(() => {
  const fake = fakeDeps(script, { apiKey: KEY });
  calls = fake.calls;
  server = startApiServer(createApp(fake.deps, { keepAliveMs: 50, headerWaitMs: 20 }), { host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${server.port}`;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await server.stop();
});

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** The error the client throws for a request, as an OpenAI APIError. */
async function apiError(run: () => Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(OpenAI.APIError);
    return err as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected the request to fail");
}

const messages = [{ role: "user" as const, content: "hello world" }];

describe("the openai client against the served app", () => {
  test("gets a chat completion with content, finish_reason and usage", async () => {
    const done = await client.chat.completions.create({ model: "tiny-chat", messages, temperature: 0 });
    expect(done.object).toBe("chat.completion");
    expect(done.choices[0]!.message.content).toBe("You said: hello world");
    expect(done.choices[0]!.finish_reason).toBe("stop");
    expect(done.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
  });

  test("streams chunk objects and a usage chunk when include_usage is set", async () => {
    const stream = await client.chat.completions.create({
      model: "tiny-chat",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("You said: hello world");
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("stop");
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
  });

  test("max_tokens ends the answer with finish_reason length", async () => {
    const done = await client.chat.completions.create({ model: "tiny-chat", messages, max_tokens: 1 });
    expect(done.choices[0]!.message.content).toBe("You");
    expect(done.choices[0]!.finish_reason).toBe("length");
    expect(calls.at(-1)!.request.maxTokens).toBe(1);
  });

  test("n: 2, a bad temperature and missing messages are 400s naming the parameter", async () => {
    const n2 = await apiError(() => client.chat.completions.create({ model: "tiny-chat", messages, n: 2 }));
    expect([n2.status, n2.param]).toEqual([400, "n"]);
    const hot = await apiError(() => client.chat.completions.create({ model: "tiny-chat", messages, temperature: 3 }));
    expect([hot.status, hot.param]).toEqual([400, "temperature"]);
    const none = await apiError(() => client.chat.completions.create({ model: "tiny-chat" } as never));
    expect([none.status, none.param]).toEqual([400, "messages"]);
  });

  test("a malformed body is a 400 in OpenAI's envelope", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: '{"model": "tiny-chat", "messages": [',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
  });

  test("an unknown model is a 404 model_not_found", async () => {
    const err = await apiError(() => client.chat.completions.create({ model: "gpt-4o", messages }));
    expect(err.status).toBe(404);
    expect(err.code).toBe("model_not_found");
  });

  test("a wrong API key is a 401 and no key at all too", async () => {
    const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: "nope", maxRetries: 0 });
    expect((await apiError(() => wrong.models.list())).status).toBe(401);
    const res = await fetch(`${base}/v1/models`);
    expect(res.status).toBe(401);
    expect((await fetch(`${base}/healthcheck`)).status).toBe(200);
  });

  test("a client that disconnects mid-stream aborts the generation's signal", async () => {
    const stream = await client.chat.completions.create({
      model: "tiny-chat",
      messages: [{ role: "user", content: "long" }],
      stream: true,
    });
    const call = calls.at(-1)!;
    let received = 0;
    for await (const _chunk of stream) if (++received === 3) break;
    await until(() => call.signal.aborted, 2000, "the generation's signal to abort");
    expect(await call.ended).toBe("aborted");
  });

  test("sends keep-alive comments while the first token is slow, and ends with [DONE]", async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content: "slow" }], stream: true }),
    });
    const text = await res.text();
    expect(text.indexOf(": keep-alive\n\n")).toBeGreaterThanOrEqual(0);
    expect(text.indexOf(": keep-alive")).toBeLessThan(text.indexOf("data: "));
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  test("lists and retrieves models and runs a plain completion", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toContain("tiny-chat");
    expect((await client.models.retrieve("llama-3.2-1b")).id).toBe("llama-3.2-1b");
    const text = await client.completions.create({ model: "tiny-chat", prompt: "hi there" });
    expect(text.object).toBe("text_completion");
    expect(text.choices[0]!.text).toBe("You said: hi there");
  });

  test("serves exo's routes: healthcheck, topology, modelpool, download, progress, delete", async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const call = (path: string, init: RequestInit = {}) =>
      fetch(base + path, { ...init, headers: { ...auth, ...init.headers } });
    expect(await (await call("/healthcheck")).json()).toEqual({ status: "ok" });
    expect(((await (await call("/topology")).json()) as { active_node_id: string }).active_node_id).toBe("node-a");
    expect((await (await call("/modelpool")).text()).endsWith("data: [DONE]\n\n")).toBe(true);
    const started = await call("/download", { method: "POST", body: JSON.stringify({ model: "tiny-chat" }) });
    expect(started.status).toBe(200);
    expect((await call("/v1/download/progress")).status).toBe(200);
    expect((await call("/models/tiny-chat", { method: "DELETE" })).status).toBe(200);
  });
});
