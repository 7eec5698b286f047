// `exo run` after its node is up: prepare with progress, then one streamed answer or the chat.
import { asModelId, asNodeId } from "../../../src/ids.ts";
import { describe, expect, test } from "bun:test";
import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { EXIT_INTERRUPTED, parseRunFlags, runSession, type RunBackend } from "../../../src/cli/run-session.ts";
import { NodeError } from "../../../src/errors.ts";
import { createFakeInference, echoScript } from "../../helpers/fake-inference.ts";
import type { GenerateRequest } from "../../../src/cluster/types.ts";

function capture() {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

function backend(script = echoScript) {
  const fake = createFakeInference(script);
  const prepared: string[] = [];
  const b: RunBackend = {
    inference: fake.service,
    async prepare(modelId, onProgress) {
      if (modelId === "nope") throw new NodeError("E_MODEL_UNKNOWN", `model "${modelId}" is not in the catalog`);
      const ids = { nodeId: asNodeId("a"), modelId: asModelId(modelId) };
      onProgress({ ...ids, phase: "download", fraction: 0.5 });
      onProgress({ ...ids, phase: "ready", fraction: 1 });
      prepared.push(modelId);
    },
  };
  return { b, fake, prepared };
}

function options(extra: Partial<Parameters<typeof runSession>[1]> = {}) {
  const stdout = capture();
  const stderr = capture();
  const stdin = new PassThrough();
  return {
    opts: {
      modelId: "tiny-chat",
      temperature: 0,
      maxTokens: 32,
      stdin,
      stdout: stdout.stream,
      stderr: stderr.stream,
      ...extra,
    },
    stdout,
    stderr,
    stdin,
  };
}

describe("runSession", () => {
  test("prepares the model with progress on stderr, then streams the --prompt answer to stdout", async () => {
    const { b, fake, prepared } = backend();
    const o = options({ prompt: "what is 2+2" });
    expect(await runSession(b, o.opts)).toBe(0);
    expect(prepared).toEqual(["tiny-chat"]);
    expect(o.stdout.text()).toBe("You said: what is 2+2\n");
    expect(o.stderr.text()).toContain("preparing tiny-chat: a downloading 50%");
    expect(o.stderr.text()).toContain("a ready");
    expect(fake.calls[0]!.request).toMatchObject({ modelId: "tiny-chat", maxTokens: 32, sampling: { temperature: 0 } });
  });

  test("an unknown model fails before any generation", async () => {
    const { b, fake } = backend();
    const o = options({ modelId: "nope", prompt: "x" });
    await expect(runSession(b, o.opts)).rejects.toMatchObject({ code: "E_MODEL_UNKNOWN" });
    expect(fake.calls).toHaveLength(0);
  });

  test("Ctrl-C during a --prompt answer stops it and exits with 130", async () => {
    const long = (_req: GenerateRequest) => ({ pieces: Array(1000).fill("x"), delayMs: 5 });
    const { b, fake } = backend(long);
    const signals = new EventEmitter();
    const o = options({ prompt: "go", signals });
    const code = runSession(b, o.opts);
    const deadline = Date.now() + 2000;
    while (!o.stdout.text().includes("xx") && Date.now() < deadline) await Bun.sleep(2);
    signals.emit("SIGINT");
    expect(await code).toBe(EXIT_INTERRUPTED);
    expect(fake.calls[0]!.signal.aborted).toBe(true);
    expect(signals.listenerCount("SIGINT")).toBe(0);
  });

  test("without --prompt it chats on stdin until end of input", async () => {
    const { b, fake } = backend();
    const o = options();
    o.stdin.end("hello\nagain\n");
    expect(await runSession(b, o.opts)).toBe(0);
    expect(o.stdout.text()).toContain("You said: hello");
    expect(o.stdout.text()).toContain("You said: again");
    expect(fake.calls[1]!.request.messages).toHaveLength(3);
  });
});

describe("parseRunFlags", () => {
  test("uses the default model, greedy sampling and 1024 tokens when nothing is given", () => {
    expect(parseRunFlags({}, "exo-tiny-chat")).toEqual({
      modelId: "exo-tiny-chat",
      prompt: undefined,
      temperature: 0,
      maxTokens: 1024,
      peerWaitMs: 10_000,
    });
  });

  test("takes the model, prompt, temperature and max tokens", () => {
    const flags = parseRunFlags(
      { model: "llama-3.2-1b", prompt: "hi", temperature: "0.7", "max-tokens": "20", "peer-wait-ms": "0" },
      "d",
    );
    expect(flags).toEqual({ modelId: "llama-3.2-1b", prompt: "hi", temperature: 0.7, maxTokens: 20, peerWaitMs: 0 });
  });

  test("names the flag that is out of range", () => {
    expect(() => parseRunFlags({ temperature: "3" }, "d")).toThrow("--temperature");
    expect(() => parseRunFlags({ temperature: "warm" }, "d")).toThrow("--temperature");
    expect(() => parseRunFlags({ "max-tokens": "0" }, "d")).toThrow("--max-tokens");
    expect(() => parseRunFlags({ "max-tokens": "1.5" }, "d")).toThrow("--max-tokens");
    expect(() => parseRunFlags({ "peer-wait-ms": "-1" }, "d")).toThrow("--peer-wait-ms");
  });
});
