// The streaming splitter: text flows at once, a call is held from its marker and comes out whole at the end,
// and partial markers split across deltas are recognised.
import { describe, expect, test } from "bun:test";
import { createCallSplitter, type SplitEvent } from "../../../../src/api/tools/stream.ts";

const splitter = (parallel = true) => {
  let n = 0;
  return createCallSplitter({ offered: new Set(["get_weather"]), parallel, makeId: () => `call_${++n}` });
};

/** Feed `deltas` one by one; returns what each push gave and what finish gave. */
function feed(deltas: string[], parallel = true) {
  const s = splitter(parallel);
  const pushed = deltas.map((d) => s.push(d));
  return { pushed, finished: s.finish(), count: s.callCount };
}
const texts = (events: SplitEvent[]) => events.flatMap((e) => (e.kind === "text" ? [e.text] : []));

describe("a stream with tools offered", () => {
  test("plain text goes out delta by delta", () => {
    const { pushed, finished, count } = feed(["The weather", " is", " fine."]);
    expect(pushed.map(texts)).toEqual([["The weather"], [" is"], [" fine."]]);
    expect(finished).toEqual([]);
    expect(count).toBe(0);
  });

  test("a call split over many deltas (its marker too) is held and given whole at the end", () => {
    const call = '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>';
    const deltas = ["Sure. <to", "ol_c", ...call.slice(7).match(/.{1,4}/g)!];
    const { pushed, finished, count } = feed(deltas);
    expect(pushed.flatMap(texts).join("")).toBe("Sure. ");
    expect(finished).toEqual([
      { kind: "tool_call", index: 0, call: { id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' } },
    ]);
    expect(count).toBe(1);
  });

  test("a held text that turns out not to be a marker is released", () => {
    const { pushed, finished } = feed(["a <to", "y> b"]);
    expect([...pushed.flatMap(texts), ...texts(finished)].join("")).toBe("a <toy> b");
  });

  test("an answer that opens with { is held; JSON that is no call comes out as text at the end", () => {
    const { pushed, finished, count } = feed(["{", '"a": 1}']);
    expect(pushed.flat()).toEqual([]);
    expect(texts(finished)).toEqual(['{"a": 1}']);
    expect(count).toBe(0);
  });

  test("a Llama 3 JSON call as the whole answer", () => {
    const { finished } = feed(['{"name": "get_weather", ', '"parameters": {"city": "Lima"}}']);
    expect(finished.map((e) => e.kind)).toEqual(["tool_call"]);
  });

  test("a call cut off by max_tokens comes out as text", () => {
    const text = '<tool_call>{"name": "get_weather", "arguments": {"ci';
    const { finished, count } = feed([text]);
    expect(texts(finished)).toEqual([text]);
    expect(count).toBe(0);
  });

  test("parallel_tool_calls false keeps only the first call", () => {
    const one = '<tool_call>{"name": "get_weather", "arguments": {"city": "A"}}</tool_call>';
    const two = '<tool_call>{"name": "get_weather", "arguments": {"city": "B"}}</tool_call>';
    expect(feed([one + two], false).count).toBe(1);
    expect(feed([one + two], true).count).toBe(2);
  });
});
