// Tool calling on /v1/chat/completions over a scripted model: tools and tool_choice reach the template (or
// not), calls come back as tool_calls (JSON and SSE deltas) with finish_reason "tool_calls", tool results
// and earlier calls go back to the template, and a malformed call is plain content.
import { describe, expect, test } from "bun:test";
import { createApp } from "../../../src/api/app.ts";
import type { GenerateRequest } from "../../../src/cluster/types.ts";
import { fakeDeps, type Script } from "../../helpers/fake-inference.ts";

/** A response whose JSON tests read loosely (they assert on its shape). */
type JsonResponse = Omit<Response, "json"> & { json(): Promise<any> };

const WEATHER = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};
const TIME = { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {} } } };
const CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>';

/** A model that answers with `text`, cut in 5-character pieces (so markers split across tokens). */
const says =
  (text: string) =>
  (_req: GenerateRequest): Script => ({ pieces: text.match(/[\s\S]{1,5}/g) ?? [] });

function setup(text: string) {
  const fake = fakeDeps(says(text));
  const app = createApp(fake.deps);
  const post = (body: Record<string, unknown>) =>
    app(
      new Request("http://exo.test/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tiny-chat", messages: [{ role: "user", content: "weather in Oslo" }], ...body }),
      }),
    ) as Promise<JsonResponse>;
  return { ...fake, post };
}

const sseChunks = async (res: Response) =>
  (await res.text())
    .split("\n\n")
    .filter((f) => f.startsWith("data: ") && f !== "data: [DONE]")
    .map((f) => JSON.parse(f.slice(6)));

describe("tool calls on chat completions", () => {
  test("a call in the answer becomes message.tool_calls with an id, content null, finish_reason tool_calls", async () => {
    const { post, calls } = setup(CALL);
    const json = await (await post({ tools: [WEATHER] })).json();
    const choice = json.choices[0];
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toHaveLength(1);
    expect(choice.message.tool_calls[0]).toMatchObject({
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Oslo"}' },
    });
    expect(choice.message.tool_calls[0].id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(calls[0]!.request.tools).toEqual([WEATHER]);
  });

  test("streamed: text before the call as content deltas, the call as one tool_calls delta, then tool_calls", async () => {
    const { post } = setup(`One moment. ${CALL}`);
    const chunks = await sseChunks(await post({ tools: [WEATHER], stream: true }));
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(content).toBe("One moment. ");
    const deltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(deltas).toHaveLength(1);
    expect(deltas[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(JSON.parse(deltas[0].function.arguments)).toEqual({ city: "Oslo" });
    expect(chunks.at(-1).choices[0].finish_reason).toBe("tool_calls");
  });

  test("a malformed call is plain content with finish_reason stop, never a 500", async () => {
    const broken = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"</tool_call>';
    const { post } = setup(broken);
    const res = await post({ tools: [WEATHER] });
    expect(res.status).toBe(200);
    const json = await res.json();
    expect(json.choices[0].message.content).toBe(broken);
    expect(json.choices[0].message.tool_calls).toBeUndefined();
    expect(json.choices[0].finish_reason).toBe("stop");
    const chunks = await sseChunks(await setup(broken).post({ tools: [WEATHER], stream: true }));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(broken);
  });

  test('tool_choice "none" renders no tools and reads no calls; a named function offers only that one', async () => {
    const none = setup(CALL);
    const json = await (await none.post({ tools: [WEATHER, TIME], tool_choice: "none" })).json();
    expect(json.choices[0].message.content).toBe(CALL);
    expect(none.calls[0]!.request.tools).toBeUndefined();
    const named = setup(CALL);
    await named.post({ tools: [WEATHER, TIME], tool_choice: { type: "function", function: { name: "get_weather" } } });
    expect(named.calls[0]!.request.tools).toEqual([WEATHER]);
    const required = setup(CALL);
    expect(
      (await (await required.post({ tools: [WEATHER, TIME], tool_choice: "required" })).json()).choices[0]
        .finish_reason,
    ).toBe("tool_calls");
  });

  test("bad tool fields are 400s naming the parameter", async () => {
    const { post } = setup(CALL);
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: {} }, "tools"],
      [{ tools: [{ type: "function" }] }, "tools[0]"],
      [{ tools: [{ type: "function", function: { name: "bad name!" } }] }, "tools[0].function.name"],
      [{ tools: [WEATHER], tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice"],
      [{ tools: [WEATHER], tool_choice: "sometimes" }, "tool_choice"],
      [{ tools: [WEATHER], parallel_tool_calls: "yes" }, "parallel_tool_calls"],
      [{ tool_choice: "required" }, "tool_choice"],
    ];
    for (const [body, param] of cases) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect((await res.json()).error.param).toBe(param);
    }
  });

  test("an earlier call (arguments as JSON text) and its tool result reach the template, arguments parsed", async () => {
    const { post, calls } = setup("The weather in Oslo is sunny.");
    const messages = [
      { role: "user", content: "weather in Oslo" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ];
    const json = await (await post({ tools: [WEATHER], messages })).json();
    expect(json.choices[0]).toMatchObject({
      finish_reason: "stop",
      message: { content: "The weather in Oslo is sunny." },
    });
    const sent = calls[0]!.request.messages!;
    expect(sent[1]!.tool_calls).toEqual([
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: { city: "Oslo" } } },
    ]);
    expect(sent[2]).toMatchObject({ role: "tool", content: "sunny", tool_call_id: "call_1" });
  });

  test("without tools a call-like answer is plain content", async () => {
    const { post } = setup(CALL);
    expect((await (await post({})).json()).choices[0].message.content).toBe(CALL);
  });
});
