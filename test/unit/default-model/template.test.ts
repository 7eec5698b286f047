// The embedded model's chat template with tools: plain chats render exactly as the first template did (the
// committed weights were trained on that), offered tools become one system line, an assistant's calls are
// Qwen/Hermes <tool_call> JSON (arguments as an object or as JSON text), results are <|tool|> messages. Also
// the tool task's corpus: cities split into training and held-out, and chats whose answers are right.
import { describe, expect, test } from "bun:test";
import { Template } from "@huggingface/jinja";
import { CHAT_TEMPLATE, PLAIN_CHAT_TEMPLATE } from "../../../scripts/default-model/hf-files.ts";
import { encodeConversation } from "../../../scripts/default-model/batches.ts";
import { makeRng } from "../../../scripts/default-model/tasks.ts";
import {
  HELD_OUT_CITIES,
  sampleWeatherChat,
  TRAINING_CITIES,
  WEATHER_TOOL,
} from "../../../scripts/default-model/tool-tasks.ts";
import * as hf from "../../../scripts/default-model/hf-files.ts";
import { createTokenizer } from "../../../src/tokenizer/tokenizer.ts";

const render = (source: string, messages: unknown[], tools: unknown = null) =>
  new Template(source).render({ bos_token: "<|begin|>", messages, tools, add_generation_prompt: true });

describe("exo-tiny-chat's chat template", () => {
  test("renders chats without tools exactly as the template the weights were trained with", () => {
    const chats = [
      [{ role: "user", content: "count from 3 to 9" }],
      [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" },
        { role: "assistant", content: "Hi!" },
        { role: "user", content: "reverse abc" },
      ],
    ];
    for (const chat of chats) expect(render(CHAT_TEMPLATE, chat)).toBe(render(PLAIN_CHAT_TEMPLATE, chat));
  });

  test("renders offered tools, a call and its result", () => {
    const call = { id: "c1", type: "function", function: { name: "get_weather", arguments: { city: "Oslo" } } };
    const chat = [
      { role: "user", content: "weather in Oslo" },
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", content: "sunny, 3 C" },
    ];
    expect(render(CHAT_TEMPLATE, chat, [WEATHER_TOOL])).toBe(
      "<|begin|><|system|>tools: get_weather(city)<|end|><|user|>weather in Oslo<|end|>" +
        '<|assistant|><tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call><|end|>' +
        "<|tool|>sunny, 3 C<|end|><|assistant|>",
    );
    // Arguments as OpenAI's JSON text render the same way.
    const asText = [
      chat[0],
      { ...chat[1], tool_calls: [{ ...call, function: { ...call.function, arguments: '{"city": "Oslo"}' } }] },
    ];
    expect(render(CHAT_TEMPLATE, asText, [WEATHER_TOOL])).toContain(
      '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>',
    );
  });

  test("several tools are listed with their parameters; a role it does not know is refused", () => {
    const time = {
      type: "function",
      function: { name: "get_time", parameters: { type: "object", properties: { zone: {}, fmt: {} } } },
    };
    expect(render(CHAT_TEMPLATE, [{ role: "user", content: "x" }], [WEATHER_TOOL, time])).toStartWith(
      "<|begin|><|system|>tools: get_weather(city) get_time(zone,fmt)<|end|>",
    );
    expect(() => render(CHAT_TEMPLATE, [{ role: "robot", content: "x" }])).toThrow(/knows the roles/);
  });
});

describe("the tool task's corpus", () => {
  test("held-out cities never appear in training chats, and each chat's call names its question's city", () => {
    expect(HELD_OUT_CITIES.length).toBeGreaterThan(5);
    for (const c of HELD_OUT_CITIES) expect(TRAINING_CITIES).not.toContain(c);
    const rng = makeRng(3);
    for (let i = 0; i < 2000; i++) {
      const chat = sampleWeatherChat(rng);
      const question = chat.messages[0]!.content as string;
      const city = (chat.messages[1]!.tool_calls as { function: { arguments: { city: string } } }[])[0]!.function
        .arguments.city;
      expect(question.endsWith(` in ${city}`)).toBe(true);
      expect(HELD_OUT_CITIES).not.toContain(city);
      if (chat.messages.length === 4)
        expect(chat.messages[3]!.content).toBe(`The weather in ${city} is ${chat.messages[2]!.content}.`);
    }
  });

  test("training marks both the call and the final sentence as answers, nothing of the question or the result", () => {
    const tok = createTokenizer(
      { tokenizerJson: hf.tokenizerJson(), tokenizerConfig: hf.tokenizerConfigJson(), config: hf.configJson() },
      "t",
    );
    const rng = makeRng(9);
    let chat = sampleWeatherChat(rng);
    while (chat.messages.length < 4) chat = sampleWeatherChat(rng);
    const { ids, isAnswer } = encodeConversation(tok, chat);
    const answered = tok.decode(ids.filter((_, i) => isAnswer[i]));
    const call = (chat.messages[1]!.tool_calls as { function: { arguments: { city: string } } }[])[0]!.function
      .arguments;
    expect(answered).toBe(
      `<tool_call>{"name": "get_weather", "arguments": ${JSON.stringify(call).replace(":", ": ")}}</tool_call><|end|>` +
        `${chat.messages[3]!.content}<|end|>`,
    );
  });
});
