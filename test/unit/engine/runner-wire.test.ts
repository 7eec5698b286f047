// Node ↔ runner frames: every call and reply survives the real frame codec; malformed ones are refused by name.
import { describe, expect, test } from "bun:test";
import { encodeFrame, FrameDecoder } from "../../../src/protocol/frame.ts";
import { parseRunnerFault, matchesFault } from "../../../src/engine/runner-fault.ts";
import {
  decodeRunnerCall,
  decodeRunnerReply,
  encodeRunnerCall,
  encodeRunnerReply,
  type RunnerCall,
  type RunnerReply,
} from "../../../src/engine/runner-wire.ts";
import { isNodeError } from "../../../src/errors.ts";
import type { Message } from "../../../src/protocol/types.ts";

const tensor = {
  dtype: "float32" as const,
  shape: [1, 2, 3],
  bytes: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer),
};
const sampling = { temperature: 0.7, topP: 0.9, topK: 40, seed: 7 };

function viaCodec(msg: ReturnType<typeof encodeRunnerCall>): Message {
  const [decoded] = new FrameDecoder().push(encodeFrame(msg));
  return decoded!;
}

describe("runner wire", () => {
  const calls: RunnerCall[] = [
    { op: "load", id: 1, shard: { modelId: "m", modelDir: "/d", layerStart: 2, layerEnd: 5, nLayers: 8 } },
    { op: "step", id: 2, requestId: "r", input: { kind: "tokens", tokens: [1, 2, 3] }, sampling },
    {
      op: "step",
      id: 3,
      requestId: "r",
      input: { kind: "hidden", tensor },
      sampling: { temperature: 0, topP: 1, topK: 0 },
    },
    { op: "end", id: 4, requestId: "r" },
    { op: "health", id: 5 },
  ];
  for (const call of calls) {
    test(`a ${call.op}${call.op === "step" ? ` (${call.input.kind})` : ""} call round-trips through the frame codec`, () => {
      expect(decodeRunnerCall(viaCodec(encodeRunnerCall(call)))).toEqual(call);
    });
  }

  const replies: RunnerReply[] = [
    { kind: "hello", pid: 42, engine: "fake" },
    { kind: "progress", id: 1, fraction: 0.5, detail: "layers" },
    { kind: "ok", id: 1 },
    { kind: "output", id: 2, output: { kind: "token", token: 9 } },
    { kind: "output", id: 3, output: { kind: "hidden", tensor } },
    { kind: "health", id: 5, liveRequests: 3, loaded: null },
    {
      kind: "health",
      id: 6,
      liveRequests: 0,
      loaded: { modelId: "m", modelDir: "/d", layerStart: 0, layerEnd: 2, nLayers: 2 },
    },
    { kind: "error", id: 6, code: "E_CAPACITY", message: "full" },
  ];
  for (const reply of replies) {
    test(`a ${reply.kind} reply round-trips through the frame codec`, () => {
      expect(decodeRunnerReply(viaCodec(encodeRunnerReply(reply)))).toEqual(reply);
    });
  }

  test("a call with a missing or mistyped field is refused naming the field", () => {
    const cases: Array<[Message, string]> = [
      [
        { type: "PROMPT", fields: { id: 1, requestId: "r", tokens: [1.5], sampling }, body: new Uint8Array() },
        "tokens",
      ],
      [{ type: "END", fields: { id: 1 }, body: new Uint8Array() }, "requestId"],
      [{ type: "PREPARE", fields: { id: 1, shard: { modelId: "m" } }, body: new Uint8Array() }, "shard.modelDir"],
      [
        {
          type: "PROMPT",
          fields: { id: 1, requestId: "r", tokens: [1], sampling: { temperature: 0 } },
          body: new Uint8Array(),
        },
        "sampling.topP",
      ],
      [{ type: "HEALTH", fields: {}, body: new Uint8Array() }, "id"],
      [{ type: "TOPOLOGY", fields: { id: 1 }, body: new Uint8Array() }, "TOPOLOGY"],
    ];
    for (const [msg, named] of cases) {
      let err: unknown;
      try {
        decodeRunnerCall(msg);
      } catch (e) {
        err = e;
      }
      expect(isNodeError(err) && err.code).toBe("E_PROTOCOL_PAYLOAD");
      expect(String(err)).toContain(named);
    }
  });
});

describe("runner fault hook", () => {
  test("parses both fault forms and matches only the steps they name", () => {
    const byRequest = parseRunnerFault("abort-on-request:crash-");
    expect(matchesFault(byRequest, "crash-7", { kind: "tokens", tokens: [1] })).toBe(true);
    expect(matchesFault(byRequest, "ok-7", { kind: "tokens", tokens: [1] })).toBe(false);
    const byToken = parseRunnerFault("abort-on-token:13");
    expect(matchesFault(byToken, "any", { kind: "tokens", tokens: [4, 13] })).toBe(true);
    expect(matchesFault(byToken, "any", { kind: "tokens", tokens: [4, 14] })).toBe(false);
    expect(matchesFault(byToken, "any", { kind: "hidden", tensor })).toBe(false);
    const onLoad = parseRunnerFault("abort-on-load-if-file:/tmp/x:y");
    expect(onLoad).toEqual({ kind: "abort-on-load-if-file", path: "/tmp/x:y" });
    expect(matchesFault(onLoad, "any", { kind: "tokens", tokens: [1] })).toBe(false);
  });

  test("refuses an unknown fault spec with the accepted forms", () => {
    for (const spec of ["abort", "abort-on-token:x", "abort-on-request:", "abort-on-load-if-file:", "explode:1"]) {
      expect(() => parseRunnerFault(spec)).toThrow(
        "abort-on-request:<id prefix>, abort-on-token:<token id> or abort-on-load-if-file:<path>",
      );
    }
  });
});
