// Pure translation of the Ollama API: /api/chat and /api/generate bodies (Ollama's option names) →
// GenerateRequest, and answers → Ollama's NDJSON lines and final objects. Errors are `{"error": "…"}`.
import type { ChatMessage, GenerateRequest, Usage } from "../cluster/types.ts";
import { describeError, invalidParam } from "./errors.ts";
import { DEFAULT_MAX_TOKENS } from "./openai.ts";
import type { AnswerEvent, AnswerFinish } from "./tools/events.ts";
import type { ToolCall } from "./tools/parse.ts";
import { parseToolPlan, templateReady, type ToolPlan } from "./tools/request.ts";

type Body = Record<string, unknown>;

/** Ollama's own sampling defaults, so its clients get what they would get from Ollama. */
export const OLLAMA_DEFAULTS = { temperature: 0.8, topP: 0.9, topK: 40 } as const;

export interface ParsedOllamaRequest {
  request: GenerateRequest;
  stream: boolean;
  toolPlan: ToolPlan | null;
}

/** POST /api/chat. @throws E_INVALID_REQUEST naming the field */
export function parseOllamaChat(raw: unknown): ParsedOllamaRequest {
  const body = asBody(raw);
  if (!Array.isArray(body.messages)) throw invalidParam("messages", "messages must be an array");
  if (body.messages.length === 0) throw invalidParam("messages", "messages must not be empty");
  const messages = body.messages.map((m, i) => chatMessage(m, `messages[${i}]`));
  const toolPlan = parseToolPlan({ tools: body.tools });
  const request = base(body);
  request.messages = templateReady(messages);
  if (toolPlan) request.tools = toolPlan.tools;
  return { request, stream: streamOf(body), toolPlan };
}

/** POST /api/generate: the prompt goes through the chat template (with `system`), or as is with `raw`. */
export function parseOllamaGenerate(raw: unknown): ParsedOllamaRequest & { empty: boolean } {
  const body = asBody(raw);
  const prompt = body.prompt ?? "";
  if (typeof prompt !== "string") throw invalidParam("prompt", "prompt must be a string");
  for (const key of ["suffix", "template", "images", "context"]) {
    const v = body[key];
    if (v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && v.length === 0)) {
      throw invalidParam(key, `${key} is not supported`);
    }
  }
  const system = body.system ?? "";
  if (typeof system !== "string") throw invalidParam("system", "system must be a string");
  const request = base(body);
  if (body.raw === true) request.prompt = prompt;
  else
    request.messages = [
      ...(system ? [{ role: "system" as const, content: system }] : []),
      { role: "user" as const, content: prompt },
    ];
  return { request, stream: streamOf(body), toolPlan: null, empty: prompt.length === 0 };
}

/** Nanosecond timings Ollama reports with the last object. */
export interface Timings {
  totalNs: number;
  promptNs: number;
  evalNs: number;
}

/** The fields of a final (`done: true`) object. */
export function finalFields(finish: AnswerFinish, usage: Usage, t: Timings) {
  return {
    done: true,
    done_reason: finish === "length" ? "length" : "stop",
    total_duration: t.totalNs,
    load_duration: 0,
    prompt_eval_count: usage.promptTokens,
    prompt_eval_duration: t.promptNs,
    eval_count: usage.completionTokens,
    eval_duration: t.evalNs,
  };
}

/** Ollama's tool call: arguments as an object, no id. */
export function ollamaToolCall(call: ToolCall) {
  return { function: { name: call.name, arguments: JSON.parse(call.arguments) as unknown } };
}

/**
 * The lines of a streamed answer: one per text delta (chat: `message.content`, generate: `response`),
 * one per tool call (chat), then the final object with the counts and timings.
 */
export async function* ollamaLines(
  kind: "chat" | "generate",
  model: string,
  events: AsyncIterable<AnswerEvent>,
  clock: () => number,
): AsyncGenerator<object> {
  const started = clock();
  let firstAt: number | undefined;
  const head = () => ({ model, created_at: new Date().toISOString() });
  for await (const event of events) {
    firstAt ??= clock();
    if (event.kind === "text") {
      if (event.text.length === 0) continue;
      yield kind === "chat"
        ? { ...head(), message: { role: "assistant", content: event.text }, done: false }
        : { ...head(), response: event.text, done: false };
    } else if (event.kind === "tool_call") {
      yield {
        ...head(),
        message: { role: "assistant", content: "", tool_calls: [ollamaToolCall(event.call)] },
        done: false,
      };
    } else {
      const now = clock();
      const timings = { totalNs: ns(now - started), promptNs: ns(firstAt - started), evalNs: ns(now - firstAt) };
      const body = kind === "chat" ? { message: { role: "assistant", content: "" } } : { response: "" };
      yield { ...head(), ...body, ...finalFields(event.finishReason, event.usage, timings) };
      return;
    }
  }
}

const encoder = new TextEncoder();

/** One NDJSON line. */
export const ndjsonLine = (value: unknown): Uint8Array => encoder.encode(`${JSON.stringify(value)}\n`);

/** Ollama's error body and the status OpenAI's mapping gives. */
export function ollamaError(err: unknown): { status: number; body: { error: string } } {
  const { status, body } = describeError(err);
  return { status, body: { error: body.error.message } };
}

// --- internal ---

const ns = (ms: number) => Math.round(ms * 1e6);

function asBody(raw: unknown): Body {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalidParam("body", "the request body must be a JSON object");
  }
  const body = raw as Body;
  if (typeof body.model !== "string" || body.model.length === 0) throw invalidParam("model", "model is required");
  const format = body.format;
  if (format !== undefined && format !== null && format !== "") throw invalidParam("format", "format is not supported");
  return body;
}

function streamOf(body: Body): boolean {
  const stream = body.stream ?? true;
  if (typeof stream !== "boolean") throw invalidParam("stream", "stream must be true or false");
  return stream;
}

/** The sampling and limits from `options` (num_predict, temperature, top_p, top_k, seed, stop). */
function base(body: Body): GenerateRequest {
  const o = body.options ?? {};
  if (typeof o !== "object" || o === null || Array.isArray(o))
    throw invalidParam("options", "options must be an object");
  const options = o as Body;
  const num = (key: string, ok: (v: number) => boolean, rule: string): number | undefined => {
    const v = options[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v))
      throw invalidParam(`options.${key}`, `options.${key} must be ${rule}`);
    return v;
  };
  const numPredict = num(
    "num_predict",
    (v) => Number.isSafeInteger(v) && (v >= 1 || v === -1 || v === -2),
    "an integer >= 1, or -1",
  );
  const seed = num("seed", Number.isSafeInteger, "an integer");
  const stop = options.stop ?? [];
  const stops = typeof stop === "string" ? [stop] : stop;
  if (!Array.isArray(stops) || stops.some((s) => typeof s !== "string" || s.length === 0)) {
    throw invalidParam("options.stop", "options.stop must be an array of non-empty strings");
  }
  return {
    modelId: body.model as string,
    sampling: {
      temperature: num("temperature", (v) => v >= 0 && v <= 2, "from 0 to 2") ?? OLLAMA_DEFAULTS.temperature,
      topP: num("top_p", (v) => v > 0 && v <= 1, "above 0 up to 1") ?? OLLAMA_DEFAULTS.topP,
      topK: num("top_k", (v) => Number.isSafeInteger(v) && v >= 0, "an integer >= 0") ?? OLLAMA_DEFAULTS.topK,
      ...(seed === undefined ? {} : { seed }),
    },
    // -1 (and -2) mean "until the model stops": the API's default cap, which the service may lower to the context.
    maxTokens: numPredict === undefined || numPredict < 0 ? DEFAULT_MAX_TOKENS : numPredict,
    stop: stops as string[],
  };
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);

function chatMessage(raw: unknown, path: string): ChatMessage {
  const m = raw as Body | null;
  if (typeof m !== "object" || m === null) throw invalidParam(path, `${path} must be an object`);
  if (typeof m.role !== "string" || !ROLES.has(m.role)) {
    throw invalidParam(`${path}.role`, `${path}.role must be one of system, user, assistant, tool`);
  }
  if (Array.isArray(m.images) && m.images.length > 0) throw invalidParam(`${path}.images`, "images are not supported");
  const content = m.content ?? "";
  if (typeof content !== "string") throw invalidParam(`${path}.content`, `${path}.content must be a string`);
  const out: ChatMessage = { role: m.role as ChatMessage["role"], content };
  if (Array.isArray(m.tool_calls)) out.tool_calls = m.tool_calls;
  if (typeof m.tool_name === "string") out.name = m.tool_name;
  return out;
}
