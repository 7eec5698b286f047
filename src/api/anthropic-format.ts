// Pure translation of Anthropic's Messages API: a POST /v1/messages body → GenerateRequest (system as the
// top-level field or as system-role messages, tool_use / tool_result blocks as the chat's tool calls and
// results), and the answer → a `message` object or the event sequence of a stream. Errors are Anthropic's shape.
import type { ChatMessage, GenerateRequest } from "../cluster/types.ts";
import type { Collected } from "./openai-responses.ts";
import { describeError, invalidParam } from "./errors.ts";
import type { AnswerEvent, AnswerFinish } from "./tools/events.ts";
import type { ToolCall } from "./tools/parse.ts";
import { parseToolPlan, templateReady, type ToolPlan } from "./tools/request.ts";

type Body = Record<string, unknown>;

export interface ParsedMessagesRequest {
  request: GenerateRequest;
  stream: boolean;
  toolPlan: ToolPlan | null;
}

/** Anthropic's limit on stop_sequences is generous; the engine matches each one on every token. */
export const MAX_STOP_SEQUENCES = 16;

/** Validate a POST /v1/messages body. @throws E_INVALID_REQUEST naming the field */
export function parseMessagesBody(raw: unknown): ParsedMessagesRequest {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalidParam("body", "the request body must be a JSON object");
  }
  const body = raw as Body;
  if (typeof body.model !== "string" || body.model.length === 0) throw invalidParam("model", "model: Field required");
  const maxTokens = body.max_tokens;
  if (typeof maxTokens !== "number" || !Number.isSafeInteger(maxTokens) || maxTokens < 1) {
    throw invalidParam("max_tokens", "max_tokens: Field required (an integer >= 1)");
  }
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw invalidParam("messages", "messages: a non-empty array is required");
  }
  const system = [textOf(body.system, "system")].filter((s) => s.length > 0);
  const chat: ChatMessage[] = [];
  body.messages.forEach((m, i) => {
    for (const msg of toChatMessages(m, `messages.${i}`)) {
      // Clients (and proxies that translate from OpenAI) also send the system prompt as a message.
      if (msg.role === "system") system.push(msg.content);
      else chat.push(msg);
    }
  });
  const messages = [...(system.length > 0 ? [{ role: "system" as const, content: system.join("\n\n") }] : []), ...chat];
  const toolPlan = parseToolPlan(openAiToolFields(body));
  const request: GenerateRequest = {
    modelId: body.model,
    messages: templateReady(messages),
    ...(toolPlan ? { tools: toolPlan.tools } : {}),
    sampling: {
      temperature: number(body, "temperature", 0, 1) ?? 1,
      topP: number(body, "top_p", 0, 1, true) ?? 1,
      topK: integer(body, "top_k") ?? 0,
    },
    maxTokens,
    stop: stopSequences(body.stop_sequences),
  };
  const stream = body.stream ?? false;
  if (typeof stream !== "boolean") throw invalidParam("stream", "stream must be true or false");
  return { request, stream, toolPlan };
}

/** A fresh message id. */
export const newMessageId = () => `msg_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;

/** Anthropic ids for tool use blocks (the call ids our parser mints are OpenAI's call_…). */
const toolUseId = (call: ToolCall) => `toolu_${call.id.replace(/^call_/, "")}`;

export function stopReason(finish: AnswerFinish, stopSequence: string | undefined): string {
  if (finish === "tool_calls") return "tool_use";
  if (finish === "length") return "max_tokens";
  return stopSequence === undefined ? "end_turn" : "stop_sequence";
}

/** The non-streamed answer: a `message` with text and tool_use blocks. */
export function messageJson(id: string, model: string, answer: Collected) {
  const content: object[] = [];
  if (answer.text.length > 0 || answer.toolCalls.length === 0) content.push({ type: "text", text: answer.text });
  for (const call of answer.toolCalls) content.push(toolUseBlock(call));
  return {
    id,
    type: "message",
    role: "assistant",
    model,
    content,
    stop_reason: stopReason(answer.finishReason, answer.stopSequence),
    stop_sequence: answer.stopSequence ?? null,
    usage: { input_tokens: answer.usage.promptTokens, output_tokens: answer.usage.completionTokens },
  };
}

/** A streamed event: Anthropic names each in an `event:` line and repeats it as `type`. */
export interface AnthropicEvent {
  type: string;
  [field: string]: unknown;
}

/**
 * Anthropic's stream: message_start, then per block content_block_start / _delta... / _stop (text as
 * text_delta, a tool call as one input_json_delta), message_delta with stop_reason and usage, message_stop.
 * Nothing is yielded before the generation's first event, so early errors still get a status.
 */
export async function* messageEvents(
  id: string,
  model: string,
  events: AsyncIterable<AnswerEvent>,
): AsyncGenerator<AnthropicEvent> {
  let started = false;
  let index = -1;
  let open: "text" | null = null;
  const start = (): AnthropicEvent => {
    started = true;
    const message = { id, type: "message", role: "assistant", model, content: [], stop_reason: null };
    return {
      type: "message_start",
      message: { ...message, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } },
    };
  };
  for await (const event of events) {
    if (!started) {
      yield start();
      yield { type: "ping" };
    }
    if (event.kind === "text") {
      if (event.text.length === 0) continue;
      if (open !== "text") {
        open = "text";
        yield { type: "content_block_start", index: ++index, content_block: { type: "text", text: "" } };
      }
      yield { type: "content_block_delta", index, delta: { type: "text_delta", text: event.text } };
      continue;
    }
    if (open) yield { type: "content_block_stop", index };
    open = null;
    if (event.kind === "tool_call") {
      const block = { ...toolUseBlock(event.call), input: {} };
      yield { type: "content_block_start", index: ++index, content_block: block };
      const delta = { type: "input_json_delta", partial_json: event.call.arguments };
      yield { type: "content_block_delta", index, delta };
      yield { type: "content_block_stop", index };
      continue;
    }
    if (index < 0) {
      // An empty answer still has one (empty) text block, as Anthropic sends it.
      yield { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } };
      yield { type: "content_block_stop", index: 0 };
    }
    yield {
      type: "message_delta",
      delta: {
        stop_reason: stopReason(event.finishReason, event.stopSequence),
        stop_sequence: event.stopSequence ?? null,
      },
      usage: { input_tokens: event.usage.promptTokens, output_tokens: event.usage.completionTokens },
    };
    yield { type: "message_stop" };
    return;
  }
}

const encoder = new TextEncoder();

/** One SSE frame with Anthropic's `event:` line. */
export function anthropicFrame(value: unknown): Uint8Array {
  const event = value as AnthropicEvent;
  return encoder.encode(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
}

/** Anthropic's error types by HTTP status. */
export function anthropicErrorType(status: number): string {
  if (status === 400 || status === 405 || status === 499) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503) return "overloaded_error";
  return "api_error";
}

/** `{"type":"error","error":{"type":…,"message":…}}` with the status OpenAI's mapping gives. */
export function anthropicError(err: unknown): { status: number; body: object } {
  const { status, body } = describeError(err);
  return { status, body: { type: "error", error: { type: anthropicErrorType(status), message: body.error.message } } };
}

// --- internal ---

function toolUseBlock(call: ToolCall) {
  return { type: "tool_use", id: toolUseId(call), name: call.name, input: JSON.parse(call.arguments) as unknown };
}

/** Anthropic's tools and tool_choice in OpenAI's terms, so the one tool machinery reads them. */
function openAiToolFields(body: Body): Body {
  if (body.tools === undefined || body.tools === null) return {};
  if (!Array.isArray(body.tools)) throw invalidParam("tools", "tools must be an array");
  const tools = body.tools.map((t, i) => {
    const tool = t as Body | null;
    if (typeof tool !== "object" || tool === null) throw invalidParam(`tools.${i}`, `tools.${i} must be an object`);
    return {
      type: "function",
      function: {
        name: tool.name,
        ...(typeof tool.description === "string" ? { description: tool.description } : {}),
        ...(tool.input_schema === undefined ? {} : { parameters: tool.input_schema }),
      },
    };
  });
  const choice = body.tool_choice as Body | undefined | null;
  const parallel = choice?.disable_parallel_tool_use === true ? false : undefined;
  let toolChoice: unknown;
  if (choice === undefined || choice === null || choice.type === "auto") toolChoice = "auto";
  else if (choice.type === "any") toolChoice = "required";
  else if (choice.type === "none") toolChoice = "none";
  else if (choice.type === "tool") toolChoice = { type: "function", function: { name: choice.name } };
  else throw invalidParam("tool_choice", 'tool_choice.type must be "auto", "any", "tool" or "none"');
  return { tools, tool_choice: toolChoice, ...(parallel === false ? { parallel_tool_calls: false } : {}) };
}

/** One Anthropic message → chat messages (tool results become their own `tool` messages, before the text). */
function toChatMessages(raw: unknown, path: string): ChatMessage[] {
  const m = raw as Body | null;
  if (typeof m !== "object" || m === null) throw invalidParam(path, `${path} must be an object`);
  const role = m.role;
  if (role !== "user" && role !== "assistant" && role !== "system") {
    throw invalidParam(`${path}.role`, `${path}.role must be "user" or "assistant"`);
  }
  if (typeof m.content === "string") return [{ role, content: m.content }];
  if (!Array.isArray(m.content)) throw invalidParam(`${path}.content`, `${path}.content must be a string or blocks`);
  const out: ChatMessage[] = [];
  let text = "";
  const toolCalls: object[] = [];
  m.content.forEach((b, j) => {
    const block = b as Body | null;
    const where = `${path}.content.${j}`;
    if (block?.type === "text" && typeof block.text === "string") text += block.text;
    else if (block?.type === "tool_use" && role === "assistant") {
      if (typeof block.id !== "string" || typeof block.name !== "string") {
        throw invalidParam(where, `${where}: tool_use needs id and name`);
      }
      toolCalls.push({ id: block.id, type: "function", function: { name: block.name, arguments: block.input ?? {} } });
    } else if (block?.type === "tool_result" && role === "user") {
      out.push({ role: "tool", content: textOf(block.content, `${where}.content`), tool_call_id: block.tool_use_id });
    } else {
      throw invalidParam(
        where,
        `${where}: only text, tool_use (assistant) and tool_result (user) blocks are supported`,
      );
    }
  });
  if (toolCalls.length > 0) out.push({ role: "assistant", content: text, tool_calls: toolCalls });
  else if (text.length > 0 || out.length === 0) out.push({ role, content: text });
  return out;
}

/** A string, or text blocks joined (system prompts and tool results take both). */
function textOf(value: unknown, path: string): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) throw invalidParam(path, `${path} must be a string or an array of text blocks`);
  return value
    .map((b, i) => {
      const block = b as Body | null;
      if (block?.type !== "text" || typeof block.text !== "string") {
        throw invalidParam(`${path}.${i}`, `${path}.${i}: only text blocks are supported`);
      }
      return block.text;
    })
    .join("");
}

function stopSequences(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((s) => typeof s !== "string" || s.length === 0)) {
    throw invalidParam("stop_sequences", "stop_sequences must be an array of non-empty strings");
  }
  if (value.length > MAX_STOP_SEQUENCES) {
    throw invalidParam("stop_sequences", `stop_sequences takes at most ${MAX_STOP_SEQUENCES} strings`);
  }
  return value as string[];
}

function number(body: Body, key: string, min: number, max: number, exclusiveMin = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (exclusiveMin && v === min)) {
    throw invalidParam(
      key,
      `${key} must be a number ${exclusiveMin ? "above" : "from"} ${min} ${exclusiveMin ? "up " : ""}to ${max}`,
    );
  }
  return v;
}

function integer(body: Body, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw invalidParam(key, `${key} must be an integer >= 0`);
  return v;
}
