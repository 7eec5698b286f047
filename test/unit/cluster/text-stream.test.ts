import { describe, expect, test } from "bun:test";
import type { GenerationEvent } from "../../../src/cluster/types.ts";
import { firstStop, heldBackLength, streamText, type Detokenizer } from "../../../src/cluster/text-stream.ts";

const EOS = 99;

/** Each token id decodes to the string at that index; EOS decodes to nothing. */
function tableDetokenizer(pieces: string[]): Detokenizer {
  return { push: (id) => (id === EOS ? "" : pieces[id]!), flush: () => "" };
}

async function* ids(list: number[], seen: number[] = []): AsyncGenerator<number> {
  for (const id of list) {
    seen.push(id);
    yield id;
  }
}

async function run(list: number[], pieces: string[], stop: string[], maxTokens = 100) {
  const seen: number[] = [];
  const events: GenerationEvent[] = [];
  for await (const e of streamText(ids(list, seen), {
    detokenizer: tableDetokenizer(pieces),
    stop,
    eosIds: [EOS],
    maxTokens,
    promptTokens: 7,
  }))
    events.push(e);
  const text = events.flatMap((e) => (e.kind === "text" ? [e.text] : [])).join("");
  return { events, text, done: events.at(-1)!, seen };
}

describe("streamText", () => {
  test("ends at a stop string split across three tokens and never emits any part of it", async () => {
    const pieces = ["Hello ", "wor", "ld", "EN", "D", "after"];
    const r = await run([0, 1, 2, 3, 4, 5], pieces, ["ldEND"]);
    expect(r.text).toBe("Hello wor");
    expect(r.done).toEqual({
      kind: "done",
      finishReason: "stop",
      usage: { promptTokens: 7, completionTokens: 5 },
      stopSequence: "ldEND",
    });
    // The token stream is not consumed past the stop string, so the request ends there.
    expect(r.seen).toEqual([0, 1, 2, 3, 4]);
  });

  test("releases held-back text when the stop string does not complete", async () => {
    const r = await run([0, 1, 2], ["ab", "c", "x"], ["cd"], 3);
    expect(r.text).toBe("abcx");
    expect(r.done).toMatchObject({ finishReason: "length", usage: { completionTokens: 3 } });
    const texts = r.events.flatMap((e) => (e.kind === "text" ? [e.text] : []));
    expect(texts).toEqual(["ab", "cx"]);
  });

  test("an EOS token ends with finish_reason stop and adds no text", async () => {
    const r = await run([0, EOS], ["hi"], ["x"]);
    expect(r.text).toBe("hi");
    expect(r.done).toMatchObject({ finishReason: "stop", usage: { completionTokens: 2 } });
    // EOS is no stop string: Anthropic's stop_reason is then end_turn, not stop_sequence.
    expect(r.done).not.toHaveProperty("stopSequence");
  });

  test("reaching max tokens ends with finish_reason length", async () => {
    const r = await run([0, 0, 0, 0], ["a"], [], 4);
    expect(r.text).toBe("aaaa");
    expect(r.done).toMatchObject({ finishReason: "length", usage: { promptTokens: 7, completionTokens: 4 } });
  });

  test("the earliest of several stop strings wins", async () => {
    const r = await run([0], ["one two three"], ["three", "two"]);
    expect(r.text).toBe("one ");
    expect(r.done).toMatchObject({ finishReason: "stop", stopSequence: "two" });
  });

  test("held-back length is the longest stop-string prefix at the end of the text", () => {
    expect(heldBackLength("abc", ["cde"])).toBe(1);
    expect(heldBackLength("abcd", ["cde", "bcdx"])).toBe(3);
    expect(heldBackLength("abc", ["xyz"])).toBe(0);
    expect(firstStop("abcabc", ["ca", "bc"])).toBe(1);
    expect(firstStop("abc", [""])).toBe(-1);
  });
});
