// The Ollama API over a scripted model: NDJSON streams by default, stream:false objects, option names,
// tool calls, tags/ps/show/version, and Ollama's {"error": …} shape.
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import { NodeError } from "../../../src/errors.ts";
import type { GenerateRequest, Placement } from "../../../src/cluster/types.ts";
import { fakeDeps, type Script } from "../../helpers/fake-inference.ts";

/** A response whose JSON tests read loosely (they assert on its shape). */
type JsonResponse = Omit<Response, "json"> & { json(): Promise<any> };

const says =
  (text: string) =>
  (_req: GenerateRequest): Script => ({ pieces: text.match(/[\s\S]{1,4}/g) ?? [], promptTokens: 5 });
const PLACED: Placement = {
  modelId: "tiny-chat",
  nLayers: 4,
  state: "ready",
  requestsInFlight: 0,
  stages: [
    { nodeId: "a", layerStart: 0, layerEnd: 3, memoryMb: 6000, phase: "ready", fraction: 1 },
    { nodeId: "b", layerStart: 3, layerEnd: 4, memoryMb: 2000, phase: "ready", fraction: 1 },
  ],
};

function setup(text = "Hi! How can I help?") {
  const fake = fakeDeps(says(text), {
    cluster: { placements: () => [PLACED], unload: async (m) => ({ modelId: m, nodes: [] }) },
  });
  const app = createApp(fake.deps);
  const call = (path: string, body?: Record<string, unknown>) =>
    app(
      new Request(`http://exo.test${path}`, {
        method: body ? "POST" : "GET",
        headers: { "content-type": "application/json" },
        ...(body ? { body: JSON.stringify(body) } : {}),
      }),
    ) as Promise<JsonResponse>;
  return { ...fake, call };
}

const lines = async (res: Response) =>
  (await res.text())
    .split("\n")
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l));

describe("/api/chat", () => {
  test("streams NDJSON by default: content lines, then a done line with counts and durations", async () => {
    const { call } = setup();
    const res = await call("/api/chat", { model: "tiny-chat", messages: [{ role: "user", content: "hi" }] });
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const all = await lines(res);
    expect(all.slice(0, -1).every((l) => l.done === false && l.message.role === "assistant")).toBe(true);
    expect(all.map((l) => l.message.content).join("")).toBe("Hi! How can I help?");
    expect(all.at(-1)).toMatchObject({
      model: "tiny-chat",
      done: true,
      done_reason: "stop",
      prompt_eval_count: 5,
      eval_count: 5,
    });
    expect(all.at(-1).total_duration).toBeGreaterThan(0);
    expect(typeof all[0].created_at).toBe("string");
  });

  test("stream:false answers one object; Ollama's option names are honoured", async () => {
    const { call, calls } = setup();
    const body = {
      model: "tiny-chat",
      stream: false,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
      ],
      options: { num_predict: 3, temperature: 0, top_p: 0.5, top_k: 7, seed: 42, stop: ["###"] },
    };
    const json = await (await call("/api/chat", body)).json();
    expect(json).toMatchObject({
      message: { role: "assistant", content: "Hi! How can " },
      done: true,
      done_reason: "length",
    });
    const req = calls[0]!.request;
    expect(req).toMatchObject({
      maxTokens: 3,
      stop: ["###"],
      sampling: { temperature: 0, topP: 0.5, topK: 7, seed: 42 },
    });
    expect(req.messages as unknown).toEqual(body.messages);
  });

  test("without options it samples with Ollama's defaults", async () => {
    const { call, calls } = setup();
    await call("/api/chat", { model: "tiny-chat", stream: false, messages: [{ role: "user", content: "hi" }] });
    expect(calls[0]!.request.sampling).toEqual({ temperature: 0.8, topP: 0.9, topK: 40 });
  });

  test("a tool call comes back as message.tool_calls with arguments as an object", async () => {
    const { call } = setup('<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>');
    const tools = [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }];
    const json = await (
      await call("/api/chat", { model: "tiny-chat", stream: false, tools, messages: [{ role: "user", content: "x" }] })
    ).json();
    expect(json.message.tool_calls).toEqual([{ function: { name: "get_weather", arguments: { city: "Oslo" } } }]);
    expect(json.message.content).toBe("");
  });

  test("errors are Ollama's {error} with a status", async () => {
    const { call } = setup();
    const unknown = await call("/api/chat", { model: "nope", messages: [{ role: "user", content: "x" }] });
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatch(/nope/);
    const bad = await call("/api/chat", {
      model: "tiny-chat",
      messages: [{ role: "user", content: "x" }],
      options: { num_predict: 0 },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/num_predict/);
  });

  test("a full admission queue is a 429 with Retry-After, streamed or not", async () => {
    const busy = new NodeError("E_CAPACITY", "32 requests running (limit 32) and 256 queued (--queue-size 256)");
    const fake = fakeDeps(() => ({ pieces: ["x"], failAtStart: busy }));
    const app = createApp(fake.deps);
    for (const stream of [false, true]) {
      const res = await app(
        new Request("http://exo.test/api/chat", {
          method: "POST",
          body: JSON.stringify({ model: "tiny-chat", stream, messages: [{ role: "user", content: "x" }] }),
        }),
      );
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(((await res.json()) as { error: string }).error).toMatch(/--queue-size 256/);
    }
  });
});

describe("/api/generate", () => {
  test("streams `response` lines; the prompt goes through the chat template with `system`, or raw", async () => {
    const { call, calls } = setup();
    const all = await lines(await call("/api/generate", { model: "tiny-chat", prompt: "hi", system: "Be brief." }));
    expect(all.map((l) => l.response).join("")).toBe("Hi! How can I help?");
    expect(all.at(-1).done).toBe(true);
    expect(calls[0]!.request.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "hi" },
    ]);
    await call("/api/generate", { model: "tiny-chat", prompt: "raw text", raw: true, stream: false });
    expect(calls[1]!.request.prompt).toBe("raw text");
  });

  test("stream:false is one object; an empty prompt only checks the model (done_reason load)", async () => {
    const { call, calls } = setup();
    const json = await (await call("/api/generate", { model: "tiny-chat", prompt: "hi", stream: false })).json();
    expect(json).toMatchObject({ response: "Hi! How can I help?", done: true, done_reason: "stop", eval_count: 5 });
    const load = await (await call("/api/generate", { model: "tiny-chat" })).json();
    expect(load).toMatchObject({ done: true, done_reason: "load", response: "" });
    expect(calls).toHaveLength(1);
  });
});

describe("model routes", () => {
  test("/api/tags lists the models whose files are here; /api/version answers", async () => {
    const { call } = setup();
    const tags = await (await call("/api/tags")).json();
    expect(tags.models.map((m: { name: string }) => m.name)).toEqual(["tiny-chat"]);
    expect(tags.models[0]).toMatchObject({ model: "tiny-chat", details: { format: "safetensors" } });
    expect(tags.models[0].digest).toMatch(/^[0-9a-f]{64}$/);
    expect((await (await call("/api/version")).json()).version).toMatch(/^\d+\.\d+\.\d+/);
  });

  test("/api/ps lists placed models with each node's layers; /api/show describes one", async () => {
    const { call } = setup();
    const ps = await (await call("/api/ps")).json();
    expect(ps.models).toHaveLength(1);
    expect(ps.models[0].name).toBe("tiny-chat");
    expect(
      ps.models[0].exo.stages.map((s: { node_id: string; layer_start: number; layer_end: number }) => [
        s.node_id,
        s.layer_start,
        s.layer_end,
      ]),
    ).toEqual([
      ["a", 0, 3],
      ["b", 3, 4],
    ]);
    const show = await (await call("/api/show", { model: "tiny-chat" })).json();
    expect(show.model_info["general.block_count"]).toBe(4);
    expect(show.capabilities).toContain("tools");
    expect((await call("/api/show", { model: "nope" })).status).toBe(404);
  });
});
