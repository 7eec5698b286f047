// The context window of a real node, through the official openai client: the embedded model takes 512 positions
// (config.json). A longer prompt is a 400 context_length_exceeded before any work (nothing is prepared); a
// max_tokens beyond what is left stops with finish_reason "length" exactly at the window. The fake engine never
// samples EOS, so only the window can end these answers early.
import { beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { runCli, spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";

useNodes();

const MODEL = "exo-tiny-chat";
const WINDOW = 512;
let node: SpawnedNode;
let client: OpenAI;

beforeAll(async () => {
  const local = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];
  node = await spawnNode({ args: ["--node-id", "solo", ...local, "--engine", "fake", "--memory-mb", "4000"] });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${node.apiPort}/v1`, apiKey: "unused", maxRetries: 0 });
}, 30_000);

async function refusal(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error("expected the request to be refused");
}

describe("the context window", () => {
  test(
    "a 15,000-token chat is a 400 context_length_exceeded on `messages`, streamed or not, before any work",
    withNodeLogs(async () => {
      const messages = [{ role: "user" as const, content: "a".repeat(15_000) }];
      for (const stream of [false, true]) {
        const err = await refusal(client.chat.completions.create({ model: MODEL, messages, stream }));
        expect(err.status).toBe(400);
        expect(err.error).toMatchObject({
          type: "invalid_request_error",
          code: "context_length_exceeded",
          param: "messages",
        });
        expect(err.message).toContain(`${MODEL}'s context window is ${WINDOW} tokens`);
      }
      // Nothing was placed, fetched or loaded for it.
      expect(node.logs()).not.toContain(`${MODEL} ready on`);
    }),
  );

  test(
    "a long completion prompt is refused on `prompt`; the node then serves a short one",
    withNodeLogs(async () => {
      const err = await refusal(client.completions.create({ model: MODEL, prompt: "b".repeat(WINDOW + 10) }));
      expect(err.status).toBe(400);
      expect(err.error).toMatchObject({ code: "context_length_exceeded", param: "prompt" });
      const ok = await client.completions.create({ model: MODEL, prompt: "hello", max_tokens: 3 });
      expect(ok.usage?.completion_tokens).toBe(3);
    }),
  );

  test(
    "max_tokens beyond the window is clamped: the answer stops with `length` where prompt + answer = the window",
    withNodeLogs(async () => {
      const messages = [{ role: "user" as const, content: "c".repeat(400) }];
      const done = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 1000 });
      expect(done.choices[0]?.finish_reason).toBe("length");
      const usage = done.usage!;
      expect(usage.prompt_tokens).toBeGreaterThan(400);
      expect(usage.prompt_tokens + usage.completion_tokens).toBe(WINDOW);

      let finish: string | null | undefined;
      let completion = 0;
      const stream = await client.chat.completions.create({
        model: MODEL,
        messages,
        max_tokens: 1000,
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const chunk of stream) {
        finish = chunk.choices[0]?.finish_reason ?? finish;
        completion = chunk.usage?.completion_tokens ?? completion;
      }
      expect(finish).toBe("length");
      expect(completion).toBe(usage.completion_tokens);
    }),
  );

  test("`exo run --prompt` with a prompt beyond the window says so and exits non-zero", async () => {
    const local = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];
    const args = ["run", MODEL, "--prompt", "d".repeat(2 * WINDOW), "--node-id", "r", ...local, "--engine", "fake"];
    const run = await runCli(args, { timeoutMs: 30_000 });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(`${MODEL}'s context window is ${WINDOW} tokens`);
    expect(run.stderr).toContain("[E_CONTEXT_LENGTH]");
  });
});
