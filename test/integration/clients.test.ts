// The clients people already use, against a 2-node cluster on the embedded model (MLX runners): the official
// `openai` client calling a tool (a city the model never saw in training, streamed and not, then answering
// from the tool's result), `@anthropic-ai/sdk` plain and streamed with a system prompt, and the `ollama`
// client's chat, generate, list and ps.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import type OpenAI from "openai";
import { TRAINING_CITIES, WEATHER_TOOL } from "../../scripts/default-model/tool-tasks.ts";
import { startCluster, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();

const MODEL = "exo-tiny-chat";
const KEY = "clients-key";
// Not in the tool task's city list at all (so never trained on, not even held out).
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

describe("openai: tool calls", () => {
  test(
    `calls get_weather for ${CITY} (a city outside the training set), then answers from the tool's result`,
    withNodeLogs(async () => {
      expect(TRAINING_CITIES).not.toContain(CITY);
      const first = await openai.chat.completions.create({ model: MODEL, messages: question, tools, temperature: 0 });
      const choice = first.choices[0]!;
      expect(choice.finish_reason).toBe("tool_calls");
      const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.id).toMatch(/^call_/);
      expect(call.function.name).toBe("get_weather");
      expect(JSON.parse(call.function.arguments)).toEqual({ city: CITY });

      const result = "sunny, 12 C";
      const second = await openai.chat.completions.create({
        model: MODEL,
        tools,
        temperature: 0,
        messages: [...question, choice.message, { role: "tool", tool_call_id: call.id, content: result }],
      });
      expect(second.choices[0]!.finish_reason).toBe("stop");
      expect(second.choices[0]!.message.content).toBe(`The weather in ${CITY} is ${result}.`);
    }),
    120_000,
  );

  test(
    "streamed: the call arrives as tool_calls deltas and the stream ends with finish_reason tool_calls",
    withNodeLogs(async () => {
      const stream = await openai.chat.completions.create({
        model: MODEL,
        messages: question,
        tools,
        temperature: 0,
        stream: true,
      });
      let name = "";
      let args = "";
      let finish: string | null = null;
      let content = "";
      for await (const chunk of stream) {
        const c = chunk.choices[0];
        for (const t of c?.delta.tool_calls ?? []) {
          name += t.function?.name ?? "";
          args += t.function?.arguments ?? "";
        }
        content += c?.delta.content ?? "";
        finish = c?.finish_reason ?? finish;
      }
      expect({ name, args: JSON.parse(args), content, finish }).toEqual({
        name: "get_weather",
        args: { city: CITY },
        content: "",
        finish: "tool_calls",
      });
    }),
    120_000,
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

  test(
    "a tool_use block for the weather question",
    withNodeLogs(async () => {
      const msg = await anthropic().messages.create(
        greedy({
          model: MODEL,
          max_tokens: 80,
          tools: [
            {
              name: "get_weather",
              input_schema: { type: "object" as const, properties: { city: { type: "string" } } },
            },
          ],
          messages: question,
        }),
      );
      expect(msg.stop_reason).toBe("tool_use");
      expect(msg.content as unknown).toEqual([
        { type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "get_weather", input: { city: CITY } },
      ]);
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
