// POST /v1/messages over a scripted model: the request mapping (system field and system-role messages,
// sampling, stop_sequences, tools and tool results), the message object, the event sequence of a stream,
// x-api-key, and Anthropic's error shape.
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { GenerateRequest } from "../../../src/cluster/types.ts";
import { NodeError } from "../../../src/errors.ts";
import { fakeDeps, type Script } from "../../helpers/fake-inference.ts";

/** A response whose JSON tests read loosely (they assert on its shape). */
type JsonResponse = Omit<Response, "json"> & { json(): Promise<any> };

const says =
  (text: string, extra: Partial<Script> = {}) =>
  (_req: GenerateRequest): Script => ({
    pieces: text.match(/[\s\S]{1,4}/g) ?? [],
    promptTokens: 7,
    ...extra,
  });

function setup(text = "Hello there.", apiKey?: string, extra: Partial<Script> = {}) {
  const fake = fakeDeps(says(text, extra), apiKey ? { apiKey } : {});
  const app = createApp(fake.deps);
  const post = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    app(
      new Request("http://exo.test/v1/messages", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({
          model: "tiny-chat",
          max_tokens: 50,
          messages: [{ role: "user", content: "hi" }],
          ...body,
        }),
      }),
    ) as Promise<JsonResponse>;
  return { ...fake, post };
}

/** The SSE events of a stream as [event line, data]. */
async function events(res: Response): Promise<[string, any][]> {
  return (await res.text())
    .split("\n\n")
    .filter((f) => f.length > 0)
    .map((f) => {
      const [ev, data] = f.split("\n");
      return [ev!.replace("event: ", ""), JSON.parse(data!.replace("data: ", ""))];
    });
}

describe("POST /v1/messages", () => {
  test("answers with a message object, end_turn and usage", async () => {
    const { post } = setup();
    const json = await (await post({})).json();
    expect(json).toMatchObject({
      type: "message",
      role: "assistant",
      model: "tiny-chat",
      content: [{ type: "text", text: "Hello there." }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 7, output_tokens: 3 },
    });
    expect(json.id).toMatch(/^msg_/);
  });

  test("the system field and system-role messages become one system message; sampling and stops are mapped", async () => {
    const { post, calls } = setup();
    await post({
      system: [{ type: "text", text: "Be brief." }],
      messages: [
        { role: "system", content: "Answer in English." },
        { role: "user", content: [{ type: "text", text: "count from 1 to 3" }] },
      ],
      temperature: 0,
      top_p: 0.5,
      top_k: 3,
      stop_sequences: ["###"],
      max_tokens: 9,
    });
    const req = calls[0]!.request;
    expect(req.messages).toEqual([
      { role: "system", content: "Be brief.\n\nAnswer in English." },
      { role: "user", content: "count from 1 to 3" },
    ]);
    expect(req.sampling).toEqual({ temperature: 0, topP: 0.5, topK: 3 });
    expect(req.stop).toEqual(["###"]);
    expect(req.maxTokens).toBe(9);
  });

  test("max_tokens reached is stop_reason max_tokens", async () => {
    const { post } = setup("a long answer that runs on");
    expect((await (await post({ max_tokens: 2 })).json()).stop_reason).toBe("max_tokens");
  });

  test("streams Anthropic's event sequence", async () => {
    const { post } = setup();
    const res = await post({ stream: true });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const seq = await events(res);
    const names = seq.map(([e]) => e);
    expect(names[0]).toBe("message_start");
    expect(names[1]).toBe("ping");
    expect(names[2]).toBe("content_block_start");
    expect(names.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    for (const [e, data] of seq) expect(data.type).toBe(e);
    const text = seq
      .filter(([e]) => e === "content_block_delta")
      .map(([, d]) => d.delta.text)
      .join("");
    expect(text).toBe("Hello there.");
    expect(seq.at(-2)![1]).toMatchObject({ delta: { stop_reason: "end_turn" }, usage: { output_tokens: 3 } });
  });

  test("tools in Anthropic's shape; a call is a tool_use block with stop_reason tool_use, streamed as input_json_delta", async () => {
    const call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>';
    const tools = [
      { name: "get_weather", description: "d", input_schema: { type: "object", properties: { city: {} } } },
    ];
    const { post, calls } = setup(call);
    const json = await (await post({ tools })).json();
    expect(json.stop_reason).toBe("tool_use");
    expect(json.content).toEqual([
      { type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "get_weather", input: { city: "Oslo" } },
    ]);
    expect(calls[0]!.request.tools).toEqual([
      { type: "function", function: { name: "get_weather", description: "d", parameters: tools[0]!.input_schema } },
    ]);
    const seq = await events(await setup(call).post({ tools, stream: true }));
    const start = seq.find(([e]) => e === "content_block_start")![1];
    expect(start.content_block).toMatchObject({ type: "tool_use", name: "get_weather", input: {} });
    const delta = seq.find(([e]) => e === "content_block_delta")![1];
    expect(delta.delta.type).toBe("input_json_delta");
    expect(JSON.parse(delta.delta.partial_json)).toEqual({ city: "Oslo" });
    expect(seq.find(([e]) => e === "message_delta")![1].delta.stop_reason).toBe("tool_use");
  });

  test("tool_use and tool_result blocks go back as the chat's tool call and tool message", async () => {
    const { post, calls } = setup("The weather in Oslo is sunny.");
    await post({
      tools: [{ name: "get_weather", input_schema: { type: "object" } }],
      messages: [
        { role: "user", content: "weather in Oslo" },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Oslo" } }],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "sunny" }] },
      ],
    });
    expect(calls[0]!.request.messages).toEqual([
      { role: "user", content: "weather in Oslo" },
      {
        role: "assistant",
        content: "",
        tool_calls: [
          { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: { city: "Oslo" } } },
        ],
      },
      { role: "tool", content: "sunny", tool_call_id: "toolu_1" },
    ]);
  });

  test("x-api-key is accepted like the bearer token; a wrong key is Anthropic's authentication_error", async () => {
    const { post } = setup("ok", "sekret");
    expect((await post({}, { "x-api-key": "sekret" })).status).toBe(200);
    expect((await post({}, { authorization: "Bearer sekret" })).status).toBe(200);
    const res = await post({}, { "x-api-key": "wrong" });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({
      type: "error",
      error: { type: "authentication_error", message: expect.any(String) },
    });
  });

  test("bad requests and unknown models are Anthropic errors naming what is wrong", async () => {
    const { post } = setup();
    const cases: [Record<string, unknown>, number, string, RegExp][] = [
      [{ max_tokens: undefined }, 400, "invalid_request_error", /max_tokens/],
      [{ messages: [] }, 400, "invalid_request_error", /messages/],
      [{ temperature: 3 }, 400, "invalid_request_error", /temperature/],
      [
        { messages: [{ role: "user", content: [{ type: "image" }] }] },
        400,
        "invalid_request_error",
        /messages\.0\.content\.0/,
      ],
      [{ model: "nope" }, 404, "not_found_error", /nope/],
    ];
    for (const [body, status, type, message] of cases) {
      const res = await post(body);
      expect(res.status).toBe(status);
      const json = await res.json();
      expect(json.type).toBe("error");
      expect(json.error.type).toBe(type);
      expect(json.error.message).toMatch(message);
    }
  });

  test("a failure before the first token is a status; capacity is rate_limit_error", async () => {
    const { post } = setup("x", undefined, { failAtStart: new NodeError("E_CAPACITY", "busy") });
    const res = await post({ stream: true });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await res.json()).error.type).toBe("rate_limit_error");
  });
});

test("stop_reason: a matched stop string is stop_sequence, EOS end_turn, the cap max_tokens, a call tool_use", async () => {
  const { stopReason } = await import("../../../src/api/anthropic-format.ts");
  expect(stopReason("stop", "###")).toBe("stop_sequence");
  expect(stopReason("stop", undefined)).toBe("end_turn");
  expect(stopReason("length", undefined)).toBe("max_tokens");
  expect(stopReason("tool_calls", undefined)).toBe("tool_use");
});
