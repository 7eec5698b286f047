// Parsing OpenAI bodies into GenerateRequest: every honoured field, and a 400 naming the param for the rest.
import { describe, expect, test } from "bun:test";
import { ApiError } from "../../../src/api/errors.ts";
import {
  DEFAULT_MAX_TOKENS,
  DEFAULT_TEMPERATURE,
  parseChatBody,
  parseCompletionBody,
} from "../../../src/api/openai.ts";

const user = [{ role: "user", content: "hi" }];

function paramOf(fn: () => unknown): string | null | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe("E_INVALID_REQUEST");
    return (err as ApiError).param;
  }
  throw new Error("expected the body to be refused");
}

describe("parseChatBody", () => {
  test("carries every honoured field into the request", () => {
    const parsed = parseChatBody({
      model: "tiny-chat",
      messages: [{ role: "system", content: "be brief" }, ...user],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 7,
      temperature: 0.5,
      top_p: 0.9,
      top_k: 40,
      seed: 123,
      stop: ["\n\n", "END"],
      tools: [{ type: "function", function: { name: "f" } }],
    });
    expect(parsed.stream).toBe(true);
    expect(parsed.includeUsage).toBe(true);
    expect(parsed.request).toEqual({
      modelId: "tiny-chat",
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
      ],
      tools: [{ type: "function", function: { name: "f" } }],
      sampling: { temperature: 0.5, topP: 0.9, topK: 40, seed: 123 },
      maxTokens: 7,
      stop: ["\n\n", "END"],
    });
  });

  test("fills OpenAI's defaults when optional fields are absent or null", () => {
    const parsed = parseChatBody({ model: "m", messages: user, temperature: null, stop: null, n: 1 });
    expect(parsed.stream).toBe(false);
    expect(parsed.includeUsage).toBe(false);
    expect(parsed.request.sampling).toEqual({ temperature: DEFAULT_TEMPERATURE, topP: 1, topK: 0 });
    expect(parsed.request.maxTokens).toBe(DEFAULT_MAX_TOKENS);
    expect(parsed.request.stop).toEqual([]);
  });

  test("prefers max_completion_tokens over max_tokens and takes a single stop string", () => {
    const parsed = parseChatBody({ model: "m", messages: user, max_tokens: 50, max_completion_tokens: 9, stop: "x" });
    expect(parsed.request.maxTokens).toBe(9);
    expect(parsed.request.stop).toEqual(["x"]);
  });

  test("include_usage only counts on a streamed request", () => {
    expect(parseChatBody({ model: "m", messages: user, stream_options: { include_usage: true } }).includeUsage).toBe(
      false,
    );
  });

  test("joins text parts, maps the developer role to system and keeps tool-call fields (arguments parsed for the template)", () => {
    const parsed = parseChatBody({
      model: "m",
      messages: [
        { role: "developer", content: "rules" },
        {
          role: "user",
          content: [
            { type: "text", text: "a" },
            { type: "text", text: "b" },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: '{"x":1}' } }],
        },
        { role: "tool", content: "42", tool_call_id: "c1" },
      ],
    });
    expect(parsed.request.messages).toEqual([
      { role: "system", content: "rules" },
      { role: "user", content: "ab" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: { x: 1 } } }],
      },
      { role: "tool", content: "42", tool_call_id: "c1" },
    ]);
  });

  const refused: Array<[string, unknown, string]> = [
    ["a body that is not an object", [1, 2], "body"],
    ["a missing model", { messages: user }, "model"],
    ["missing messages", { model: "m" }, "messages"],
    ["empty messages", { model: "m", messages: [] }, "messages"],
    [
      "a message without a known role",
      { model: "m", messages: [{ role: "wizard", content: "x" }] },
      "messages[0].role",
    ],
    ["a user message without content", { model: "m", messages: [{ role: "user" }] }, "messages[0].content"],
    [
      "an image part",
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url" }] }] },
      "messages[0].content[0]",
    ],
    ["n of 2", { model: "m", messages: user, n: 2 }, "n"],
    ["a temperature above 2", { model: "m", messages: user, temperature: 2.5 }, "temperature"],
    ["a negative temperature", { model: "m", messages: user, temperature: -0.1 }, "temperature"],
    ["a temperature given as a string", { model: "m", messages: user, temperature: "hot" }, "temperature"],
    ["a top_p of 0", { model: "m", messages: user, top_p: 0 }, "top_p"],
    ["a fractional top_k", { model: "m", messages: user, top_k: 1.5 }, "top_k"],
    ["max_tokens of 0", { model: "m", messages: user, max_tokens: 0 }, "max_tokens"],
    [
      "a fractional max_completion_tokens",
      { model: "m", messages: user, max_completion_tokens: 2.5 },
      "max_completion_tokens",
    ],
    ["a non-integer seed", { model: "m", messages: user, seed: 1.5 }, "seed"],
    ["five stop strings", { model: "m", messages: user, stop: ["a", "b", "c", "d", "e"] }, "stop"],
    ["an empty stop string", { model: "m", messages: user, stop: [""] }, "stop"],
    ["a non-boolean stream", { model: "m", messages: user, stream: "yes" }, "stream"],
    [
      "a non-boolean include_usage",
      { model: "m", messages: user, stream_options: { include_usage: 1 } },
      "stream_options.include_usage",
    ],
    ["logprobs", { model: "m", messages: user, logprobs: true }, "logprobs"],
    ["a presence penalty", { model: "m", messages: user, presence_penalty: 0.5 }, "presence_penalty"],
    [
      "a JSON response format",
      { model: "m", messages: user, response_format: { type: "json_object" } },
      "response_format",
    ],
    ["tools that are not an array", { model: "m", messages: user, tools: {} }, "tools"],
  ];
  for (const [what, body, param] of refused) {
    test(`refuses ${what} naming "${param}"`, () => {
      expect(paramOf(() => parseChatBody(body))).toBe(param);
    });
  }
});

describe("parseCompletionBody", () => {
  test("takes the prompt (alone or as a one-element array) and the shared fields", () => {
    const parsed = parseCompletionBody({ model: "m", prompt: ["Once"], max_tokens: 3, temperature: 0 });
    expect(parsed.request.prompt).toBe("Once");
    expect(parsed.request.messages).toBeUndefined();
    expect(parsed.request.maxTokens).toBe(3);
    expect(parsed.request.sampling.temperature).toBe(0);
  });

  const refused: Array<[string, unknown, string]> = [
    ["a missing prompt", { model: "m" }, "prompt"],
    ["a token-id prompt", { model: "m", prompt: [1, 2, 3] }, "prompt"],
    ["a batch of prompts", { model: "m", prompt: ["a", "b"] }, "prompt"],
    ["echo", { model: "m", prompt: "x", echo: true }, "echo"],
    ["best_of of 3", { model: "m", prompt: "x", best_of: 3 }, "best_of"],
    ["n of 3", { model: "m", prompt: "x", n: 3 }, "n"],
  ];
  for (const [what, body, param] of refused) {
    test(`refuses ${what} naming "${param}"`, () => {
      expect(paramOf(() => parseCompletionBody(body))).toBe(param);
    });
  }
});
