// Pure builders of OpenAI response objects: chat.completion, chat.completion.chunk, text_completion,
// and the layered generators that turn GenerationEvents into the chunk sequence OpenAI clients expect.
import { NodeError } from "../errors.ts";
import type { Usage } from "../cluster/types.ts";
import type { AnswerEvent, AnswerFinish } from "./tools/events.ts";
import type { ToolCall } from "./tools/parse.ts";

/** What every object of one response shares. */
export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
}

export type Kind = "chat" | "text";

/** A fresh id (chatcmpl-… or cmpl-…) and creation time for one response. */
export function createMeta(kind: Kind, model: string): ResponseMeta {
  const prefix = kind === "chat" ? "chatcmpl-" : "cmpl-";
  return { id: prefix + crypto.randomUUID(), created: Math.floor(Date.now() / 1000), model };
}

/** OpenAI's usage object. */
export function usageJson(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/** The whole answer of a non-streamed request. */
export interface Collected {
  text: string;
  toolCalls: ToolCall[];
  finishReason: AnswerFinish;
  usage: Usage;
  /** The stop string that ended the answer, if one did. */
  stopSequence?: string;
}

/** Drain a generation into one answer. */
export async function collect(events: AsyncIterable<AnswerEvent>): Promise<Collected> {
  let text = "";
  const toolCalls: ToolCall[] = [];
  for await (const event of events) {
    if (event.kind === "text") text += event.text;
    else if (event.kind === "tool_call") toolCalls.push(event.call);
    else {
      const { finishReason, usage, stopSequence } = event;
      return { text, toolCalls, finishReason, usage, ...(stopSequence === undefined ? {} : { stopSequence }) };
    }
  }
  throw new NodeError("E_INTERNAL", "the generation ended without a done event");
}

/** A non-streamed chat answer. */
export function chatCompletion(meta: ResponseMeta, answer: Collected) {
  return {
    ...envelope(meta, "chat.completion"),
    choices: [
      {
        index: 0,
        message: chatMessage(answer),
        logprobs: null,
        finish_reason: answer.finishReason,
      },
    ],
    usage: usageJson(answer.usage),
  };
}

/** A non-streamed /v1/completions answer. */
export function textCompletion(meta: ResponseMeta, answer: Collected) {
  return {
    ...envelope(meta, "text_completion"),
    choices: [{ index: 0, text: answer.text, logprobs: null, finish_reason: answer.finishReason }],
    usage: usageJson(answer.usage),
  };
}

/**
 * The chunk objects of a streamed response, in OpenAI's order: (chat: a role chunk), one chunk per text delta,
 * a final chunk with finish_reason, then (include_usage) a chunk with empty choices and the usage.
 */
export async function* streamChunks(
  kind: Kind,
  meta: ResponseMeta,
  events: AsyncIterable<AnswerEvent>,
  includeUsage: boolean,
): AsyncGenerator<object> {
  const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
  // With include_usage, OpenAI puts `usage: null` on every chunk but the last.
  const base = { ...envelope(meta, object), ...(includeUsage ? { usage: null } : {}) };
  const choice = (text: string | null, finishReason: AnswerFinish | null, first = false) =>
    kind === "chat"
      ? { index: 0, delta: deltaOf(text, first), logprobs: null, finish_reason: finishReason }
      : { index: 0, text: text ?? "", logprobs: null, finish_reason: finishReason };
  let first = true;
  for await (const event of events) {
    if (first && kind === "chat") yield { ...base, choices: [choice("", null, true)] };
    first = false;
    if (event.kind === "text") {
      if (event.text.length > 0) yield { ...base, choices: [choice(event.text, null)] };
      continue;
    }
    if (event.kind === "tool_call") {
      const delta = { tool_calls: [{ index: event.index, ...toolCallJson(event.call) }] };
      yield { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: null }] };
      continue;
    }
    yield { ...base, choices: [choice(null, event.finishReason)] };
    if (includeUsage) yield { ...base, choices: [], usage: usageJson(event.usage) };
    return;
  }
  throw new NodeError("E_INTERNAL", "the generation ended without a done event");
}

/** OpenAI's tool call object. */
export function toolCallJson(call: ToolCall) {
  return { id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } };
}

// --- internal ---

/** The assistant message: content is null when the answer is only tool calls, as OpenAI sends it. */
function chatMessage(answer: Collected) {
  if (answer.toolCalls.length === 0) return { role: "assistant", content: answer.text, refusal: null };
  return {
    role: "assistant",
    content: answer.text.length > 0 ? answer.text : null,
    refusal: null,
    tool_calls: answer.toolCalls.map(toolCallJson),
  };
}

function envelope(meta: ResponseMeta, object: string) {
  return { id: meta.id, object, created: meta.created, model: meta.model, system_fingerprint: null };
}

function deltaOf(text: string | null, first: boolean): Record<string, string> {
  if (first) return { role: "assistant", content: "" };
  return text === null ? {} : { content: text };
}
