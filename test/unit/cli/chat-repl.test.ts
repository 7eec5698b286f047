// The terminal chat over a fake InferenceService: history across turns, Ctrl-C stops only the reply,
// errors do not end the session, Ctrl-D quits.
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { runChatRepl } from "../../../src/cli/chat-repl.ts";
import { NodeError } from "../../../src/errors.ts";
import { createFakeInference, echoScript } from "../../helpers/fake-inference.ts";
import type { GenerateRequest } from "../../../src/cluster/types.ts";

const template = { modelId: "tiny-chat", sampling: { temperature: 0, topP: 1, topK: 0 }, maxTokens: 64, stop: [] };

function script(req: GenerateRequest) {
  const last = req.messages?.at(-1)?.content;
  if (last === "long") return { pieces: Array(500).fill("la "), delayMs: 5 };
  if (last === "fail") return { pieces: [], failAtStart: new NodeError("E_PEER_DOWN", "node b is down") };
  return echoScript(req);
}

function session(terminal: boolean, signals?: EventEmitter) {
  const input = new PassThrough();
  const output = new PassThrough();
  let shown = "";
  output.on("data", (d: Buffer) => (shown += d.toString()));
  const fake = createFakeInference(script);
  const done = runChatRepl({ inference: fake.service, template, input, output, terminal, signals, banner: "hi" });
  return { input, fake, done, shown: () => shown };
}

async function until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(2);
  }
}

describe("runChatRepl", () => {
  test("keeps the conversation across turns and ends at end of input", async () => {
    const s = session(false);
    s.input.end("first\nsecond\n");
    const history = await s.done;
    expect(history).toEqual([
      { role: "user", content: "first" },
      { role: "assistant", content: "You said: first" },
      { role: "user", content: "second" },
      { role: "assistant", content: "You said: second" },
    ]);
    expect(s.fake.calls[1]!.request.messages).toEqual(history.slice(0, 3));
    expect(s.fake.calls[1]!.request.sampling.temperature).toBe(0);
    expect(s.shown()).toContain("You said: second\n");
  });

  test("Ctrl-C stops the reply in progress, the chat goes on, and Ctrl-D quits", async () => {
    const s = session(true);
    s.input.write("long\r");
    await until(() => s.shown().includes("la la"), "the reply to start");
    s.input.write("\x03");
    await until(() => s.shown().includes("[stopped]"), "the reply to stop");
    expect(s.fake.calls[0]!.signal.aborted).toBe(true);
    expect(await s.fake.calls[0]!.ended).toBe("aborted");
    s.input.write("again\r");
    await until(() => s.shown().includes("You said: again"), "the next reply");
    s.input.write("\x04");
    const history = await s.done;
    expect(history.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(history[1]!.content).toStartWith("la la");
    expect(history[1]!.content.length).toBeLessThan(500 * 3);
  });

  test("a SIGINT from the process stops the reply when the input is piped", async () => {
    const signals = new EventEmitter();
    const s = session(false, signals);
    s.input.write("long\n");
    await until(() => s.shown().includes("la la"), "the reply to start");
    signals.emit("SIGINT");
    await until(() => s.shown().includes("[stopped]"), "the reply to stop");
    s.input.end();
    expect(await s.done).toHaveLength(2);
    expect(signals.listenerCount("SIGINT")).toBe(0);
  });

  test("Ctrl-C at the prompt does not quit", async () => {
    const s = session(true);
    s.input.write("\x03");
    await until(() => s.shown().includes("Ctrl-D quits"), "the hint");
    s.input.write("still here\r");
    await until(() => s.shown().includes("You said: still here"), "the reply");
    s.input.write("\x04");
    expect(await s.done).toHaveLength(2);
  });

  test("a failed reply is reported and dropped from the history, and the chat goes on", async () => {
    const s = session(false);
    s.input.end("fail\nok\n");
    const history = await s.done;
    expect(s.shown()).toContain("error: node b is down");
    expect(history).toEqual([
      { role: "user", content: "ok" },
      { role: "assistant", content: "You said: ok" },
    ]);
  });
});
