// Tool calls parsed out of generated text, per model family's format; malformed and cut-off calls stay text.
import { describe, expect, test } from "bun:test";
import { parseToolCalls } from "../../../../src/api/tools/parse.ts";

const OFFERED = new Set(["get_weather", "get_time"]);
let n = 0;
const ids = () => `call_${++n}`;
const parse = (text: string) => parseToolCalls(text, OFFERED, ids);
const args = (text: string) => parse(text).calls.map((c) => [c.name, JSON.parse(c.arguments)]);

describe("Qwen / Hermes <tool_call>", () => {
  test("one call, the text around it is the content", () => {
    const out = parse(
      'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
    );
    expect(out.content).toBe("Let me check.");
    expect(out.calls).toHaveLength(1);
    expect(out.calls[0]!.name).toBe("get_weather");
    expect(JSON.parse(out.calls[0]!.arguments)).toEqual({ city: "Oslo" });
    expect(out.calls[0]!.id).toMatch(/^call_/);
  });

  test("several calls in a row, with distinct ids", () => {
    const text =
      '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>' +
      '<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>';
    const out = parse(text);
    expect(out.calls.map((c) => c.name)).toEqual(["get_weather", "get_time"]);
    expect(new Set(out.calls.map((c) => c.id)).size).toBe(2);
    expect(out.content).toBe("");
  });

  test("arguments given as a JSON string are accepted", () => {
    expect(args('<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}</tool_call>')).toEqual([
      ["get_weather", { city: "Rome" }],
    ]);
  });

  test("malformed JSON, a cut-off call and an unoffered tool are plain content", () => {
    for (const text of [
      '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"</tool_call>',
      '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}', // max_tokens hit before </tool_call>
      '<tool_call>{"name": "launch_rockets", "arguments": {}}</tool_call>',
      '<tool_call>{"arguments": {"city": "Oslo"}}</tool_call>',
      '<tool_call>{"name": "get_weather", "arguments": [1, 2]}</tool_call>',
      "<tool_call></tool_call>",
    ]) {
      expect(parse(text)).toEqual({ content: text, calls: [] });
    }
  });
});

describe("Llama 3 JSON", () => {
  test('the whole answer {"name", "parameters"} is a call', () => {
    expect(args('{"name": "get_weather", "parameters": {"city": "Lima"}}')).toEqual([
      ["get_weather", { city: "Lima" }],
    ]);
    expect(args(' \n{"name": "get_time", "arguments": {}}\n')).toEqual([["get_time", {}]]);
  });

  test("JSON that is not a call, or a call inside prose, stays content", () => {
    for (const text of [
      '{"city": "Lima"}',
      '{"name": "get_weather", "parameters": {}, "extra": 1}',
      'Call {"name": "get_weather", "parameters": {}}',
      '{"name": "get_weather", "parameters": {',
    ]) {
      expect(parse(text).calls).toEqual([]);
      expect(parse(text).content).toBe(text);
    }
  });
});

describe("Mistral [TOOL_CALLS]", () => {
  test("the JSON list form", () => {
    const text =
      '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Nice"}}, {"name": "get_time", "arguments": {}}]';
    expect(args(text)).toEqual([
      ["get_weather", { city: "Nice" }],
      ["get_time", {}],
    ]);
  });

  test("the list without its marker (a tokenizer that keeps [TOOL_CALLS] special)", () => {
    expect(args('[{"name": "get_weather", "arguments": {"city": "Nice"}}]')).toEqual([
      ["get_weather", { city: "Nice" }],
    ]);
  });

  test("the newer NAME[ARGS]{…} form", () => {
    expect(args('[TOOL_CALLS]get_weather[ARGS]{"city": "Nice"}[TOOL_CALLS]get_time[ARGS]{}')).toEqual([
      ["get_weather", { city: "Nice" }],
      ["get_time", {}],
    ]);
  });

  test("a broken list is content", () => {
    const text = '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Nice"}';
    expect(parse(text)).toEqual({ content: text, calls: [] });
  });
});

describe("DeepSeek markers", () => {
  test("V3 / R1: function<｜tool▁sep｜>NAME and a fenced json block", () => {
    const text =
      "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n" +
      '{"city": "Kyoto"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>';
    expect(args(text)).toEqual([["get_weather", { city: "Kyoto" }]]);
  });

  test("V3.1: NAME<｜tool▁sep｜>{json}", () => {
    const text =
      '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Kyoto"}<｜tool▁call▁end｜>' +
      "<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    expect(args(text)).toEqual([
      ["get_weather", { city: "Kyoto" }],
      ["get_time", {}],
    ]);
  });

  test("a call without its end marker is content", () => {
    const text = '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Kyoto"}';
    expect(parse(text).calls).toEqual([]);
  });
});

test("plain text is content, untouched", () => {
  expect(parse("The weather in Oslo is sunny.")).toEqual({ content: "The weather in Oslo is sunny.", calls: [] });
});
