// The clients people already use, against a 2-node cluster on the embedded model (MLX runners): the official
// `openai` client with tools, an earlier call and its result (rendered by the model's template), `@anthropic-ai/sdk`
// plain and streamed with a system prompt, and the `ollama` client's chat, generate, list and ps.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import type OpenAI from "openai";
import { WEATHER_TOOL } from "../../scripts/default-model/tool-tasks.ts";
import { startCluster, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();

const MODEL = "exo-tiny-chat";
const KEY = "clients-key";
const CITY = "Reykjavik";
let cluster: TestCluster;
let openai: OpenAI;

beforeAll(async () => {
  cluster = await startCluster(
    [
      { id: "a", memoryMb: 6000 },
      { id: "b", memoryMb: 3000 },
    ],
    ["--health-interval-ms", "500"],
    { apiKey: KEY },
  );
  openai = cluster.client("a");
}, 90_000);

afterAll(async () => {
  await cluster?.stop();
});

const base = (node: string) => `http://127.0.0.1:${cluster.node(node).apiPort}`;
const tools = [WEATHER_TOOL as unknown as OpenAI.ChatCompletionTool];
const question = [{ role: "user" as const, content: `what is the weather in ${CITY}` }];

describe("openai: tools through the real path", () => {
  // The embedded model's weights were not retrained for the tool task (configs/default-model/README.md), so it
  // does not call tools; what the whole path must still do is render tools, an earlier call and its result
  // with the model's template on a 2-node cluster, and answer (streamed and not) without an error.
  const call = {
    id: "call_1",
    type: "function" as const,
    function: { name: "get_weather", arguments: JSON.stringify({ city: CITY }) },
  };
  const roundTrip: OpenAI.ChatCompletionMessageParam[] = [
    ...question,
    { role: "assistant", content: null, tool_calls: [call] },
    { role: "tool", tool_call_id: "call_1", content: "sunny, 12 C" },
  ];

  test(
    "a chat with tools, an earlier tool call and its result is rendered by the template and answered",
    withNodeLogs(async () => {
      const res = await openai.chat.completions.create({
        model: MODEL,
        messages: roundTrip,
        tools,
        temperature: 0,
        max_tokens: 40,
      });
      const choice = res.choices[0]!;
      expect(["stop", "length", "tool_calls"]).toContain(choice.finish_reason);
      expect(res.usage!.prompt_tokens).toBeGreaterThan(60); // the tools line, the call and the result were rendered
      const stream = await openai.chat.completions.create({
        model: MODEL,
        messages: roundTrip,
        tools,
        temperature: 0,
        max_tokens: 40,
        stream: true,
      });
      let finish: string | null = null;
      for await (const chunk of stream) finish = chunk.choices[0]?.finish_reason ?? finish;
      expect(finish).toBe(choice.finish_reason);
    }),
    120_000,
  );

  test(
    "tool_choice naming a function the request did not offer is a 400 naming tool_choice",
    withNodeLogs(async () => {
      const err = await openai.chat.completions
        .create({
          model: MODEL,
          messages: question,
          tools,
          tool_choice: { type: "function", function: { name: "nope" } },
        })
        .catch((e: unknown) => e as { status?: number; param?: string });
      expect(err).toMatchObject({ status: 400, param: "tool_choice" });
    }),
    30_000,
  );
});

describe("@anthropic-ai/sdk: Messages", () => {
  const anthropic = () => new Anthropic({ baseURL: base("b"), apiKey: KEY, maxRetries: 0 });
  // This SDK's types no longer list the sampling fields; the API still takes them (greedy keeps answers exact).
  const greedy = <T extends object>(params: T) => ({ ...params, temperature: 0 }) as T;

  test(
    "a plain message with a system prompt",
    withNodeLogs(async () => {
      const msg = await anthropic().messages.create(
        greedy({
          model: MODEL,
          max_tokens: 40,
          system: "Be brief.",
          messages: [{ role: "user" as const, content: "count from 3 to 9" }],
        }),
      );
      expect(msg.content as unknown).toEqual([{ type: "text", text: "3 4 5 6 7 8 9" }]);
      expect(msg.stop_reason).toBe("end_turn");
      expect(msg.usage.output_tokens).toBeGreaterThan(0);
    }),
    60_000,
  );

  test(
    "streamed with a system prompt: text deltas, then the final message",
    withNodeLogs(async () => {
      const stream = anthropic().messages.stream(
        greedy({
          model: MODEL,
          max_tokens: 40,
          system: "Answer briefly.",
          messages: [{ role: "user" as const, content: "what is 23+41" }],
        }),
      );
      const deltas: string[] = [];
      stream.on("text", (t) => deltas.push(t));
      const final = await stream.finalMessage();
      expect(deltas.join("")).toBe("64");
      expect(final.content as unknown).toEqual([{ type: "text", text: "64" }]);
      expect(final.stop_reason).toBe("end_turn");
    }),
    60_000,
  );
});

describe("ollama client", () => {
  const ollama = () => new Ollama({ host: base("a"), headers: { authorization: `Bearer ${KEY}` } });

  test(
    "chat (streamed and not) and generate",
    withNodeLogs(async () => {
      const chat = await ollama().chat({
        model: MODEL,
        messages: [{ role: "user", content: "reverse abcde" }],
        options: { temperature: 0 },
      });
      expect(chat.message.content).toBe("edcba");
      expect(chat.done).toBe(true);
      expect(chat.eval_count).toBeGreaterThan(0);

      const parts: string[] = [];
      const stream = await ollama().chat({
        model: MODEL,
        messages: [{ role: "user", content: "count from 3 to 9" }],
        options: { temperature: 0 },
        stream: true,
      });
      let last: { done: boolean; done_reason?: string } | undefined;
      for await (const part of stream) {
        parts.push(part.message.content);
        last = part;
      }
      expect(parts.join("")).toBe("3 4 5 6 7 8 9");
      expect(parts.length).toBeGreaterThan(2);
      expect(last).toMatchObject({ done: true, done_reason: "stop" });

      const gen = await ollama().generate({ model: MODEL, prompt: "what is 2+3", options: { temperature: 0 } });
      expect(gen.response).toBe("5");
      const capped = await ollama().generate({
        model: MODEL,
        prompt: "count from 3 to 9",
        options: { num_predict: 3, temperature: 0 },
      });
      expect(capped.response).toBe("3 4");
      expect(capped.done_reason).toBe("length");
    }),
    120_000,
  );

  test(
    "list shows the embedded model and ps the model placed on both nodes",
    withNodeLogs(async () => {
      const list = await ollama().list();
      expect(list.models.map((m) => m.name)).toContain(MODEL);
      const ps = await ollama().ps();
      const placed = ps.models.find((m) => m.name === MODEL) as unknown as { exo: { stages: { node_id: string }[] } };
      expect(placed).toBeDefined();
      expect(placed.exo.stages.map((s) => s.node_id).sort()).toEqual(["a", "b"]);
    }),
    30_000,
  );
});
