// Pure translation of OpenAI request bodies (chat/completions, completions) into GenerateRequest.
// Every field we honour is validated; a value we cannot honour is a 400 naming `param`, never silently ignored.
import type { ChatMessage, GenerateRequest } from "../cluster/types.ts";
import { invalidParam } from "./errors.ts";
import { parseToolPlan, templateReady, type ToolPlan } from "./tools/request.ts";

/** Used when the client sends neither max_tokens nor max_completion_tokens; the service may cap it further. */
export const DEFAULT_MAX_TOKENS = 2048;
/** OpenAI's own defaults, so clients that omit them get what they would get from OpenAI. */
export const DEFAULT_TEMPERATURE = 1;
/** OpenAI's own limit on stop sequences. */
export const MAX_STOP_STRINGS = 4;

export interface ParsedRequest {
  request: GenerateRequest;
  stream: boolean;
  includeUsage: boolean;
  /** The tools a chat request offers and how to read calls from its answer; null: plain text. */
  toolPlan: ToolPlan | null;
}

type Body = Record<string, unknown>;

const ROLES = new Set(["system", "user", "assistant", "tool"]);

/** Validate a POST /v1/chat/completions body. @throws E_INVALID_REQUEST naming the field. */
export function parseChatBody(raw: unknown): ParsedRequest {
  const body = asBody(raw);
  const parsed = parseCommon(body);
  const messages = body.messages;
  if (messages === undefined || messages === null) throw invalidParam("messages", "messages is required");
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalidParam("messages", "messages must be a non-empty array");
  }
  parsed.request.messages = templateReady(messages.map((m, i) => parseMessage(m, `messages[${i}]`)));
  parsed.toolPlan = parseToolPlan(body);
  if (parsed.toolPlan) parsed.request.tools = parsed.toolPlan.tools;
  if (body.logprobs === true) throw invalidParam("logprobs", "logprobs are not supported");
  const format = body.response_format;
  if (format !== undefined && format !== null && (format as Body).type !== "text") {
    throw invalidParam("response_format", 'only response_format {"type":"text"} is supported');
  }
  return parsed;
}

/** Validate a POST /v1/completions body. @throws E_INVALID_REQUEST naming the field. */
export function parseCompletionBody(raw: unknown): ParsedRequest {
  const body = asBody(raw);
  const parsed = parseCommon(body);
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") prompt = prompt[0];
  if (prompt === undefined || prompt === null) throw invalidParam("prompt", "prompt is required");
  if (typeof prompt !== "string")
    throw invalidParam("prompt", "prompt must be a string (token arrays and batches are not supported)");
  parsed.request.prompt = prompt;
  if (body.echo === true) throw invalidParam("echo", "echo is not supported");
  if (body.suffix !== undefined && body.suffix !== null) throw invalidParam("suffix", "suffix is not supported");
  if (body.logprobs !== undefined && body.logprobs !== null)
    throw invalidParam("logprobs", "logprobs are not supported");
  const bestOf = optionalNumber(body, "best_of", { min: 1, integer: true });
  if (bestOf !== undefined && bestOf !== 1) throw invalidParam("best_of", "best_of must be 1");
  return parsed;
}

// --- internal ---

function asBody(raw: unknown): Body {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw invalidParam("body", "the request body must be a JSON object");
  }
  return raw as Body;
}

function parseCommon(body: Body): ParsedRequest {
  const model = body.model;
  if (typeof model !== "string" || model.length === 0)
    throw invalidParam("model", "model is required (a model id string)");
  const n = optionalNumber(body, "n", { min: 1, integer: true });
  if (n !== undefined && n !== 1) throw invalidParam("n", "only n=1 is supported");
  for (const key of ["frequency_penalty", "presence_penalty"]) {
    const value = optionalNumber(body, key, { min: -2, max: 2 });
    if (value !== undefined && value !== 0) throw invalidParam(key, `${key} is not supported (only 0)`);
  }
  const stream = optionalBoolean(body, "stream") ?? false;
  const options = body.stream_options;
  if (options !== undefined && options !== null && (typeof options !== "object" || Array.isArray(options))) {
    throw invalidParam("stream_options", "stream_options must be an object");
  }
  const includeUsage = options
    ? optionalBoolean(options as Body, "include_usage", "stream_options.include_usage")
    : undefined;
  const maxTokens =
    optionalNumber(body, "max_completion_tokens", { min: 1, integer: true }) ??
    optionalNumber(body, "max_tokens", { min: 1, integer: true }) ??
    DEFAULT_MAX_TOKENS;
  const seed = optionalNumber(body, "seed", { integer: true });
  const request: GenerateRequest = {
    modelId: model,
    sampling: {
      temperature: optionalNumber(body, "temperature", { min: 0, max: 2 }) ?? DEFAULT_TEMPERATURE,
      topP: optionalNumber(body, "top_p", { min: 0, max: 1, exclusiveMin: true }) ?? 1,
      topK: optionalNumber(body, "top_k", { min: 0, integer: true }) ?? 0,
      ...(seed === undefined ? {} : { seed }),
    },
    maxTokens,
    stop: parseStop(body.stop),
  };
  return { request, stream, includeUsage: stream && includeUsage === true, toolPlan: null };
}

function parseStop(stop: unknown): string[] {
  if (stop === undefined || stop === null) return [];
  const list = typeof stop === "string" ? [stop] : stop;
  if (!Array.isArray(list) || list.some((s) => typeof s !== "string" || s.length === 0)) {
    throw invalidParam("stop", "stop must be a non-empty string or an array of non-empty strings");
  }
  if (list.length > MAX_STOP_STRINGS) throw invalidParam("stop", `stop takes at most ${MAX_STOP_STRINGS} strings`);
  return list as string[];
}

function parseMessage(raw: unknown, path: string): ChatMessage {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw invalidParam(path, `${path} must be an object`);
  const { role: rawRole, content, ...extra } = raw as Body;
  // OpenAI's newer "developer" role is the system role under another name.
  const role = rawRole === "developer" ? "system" : rawRole;
  if (typeof role !== "string" || !ROLES.has(role)) {
    throw invalidParam(`${path}.role`, `${path}.role must be one of system, user, assistant, tool`);
  }
  return { ...extra, role: role as ChatMessage["role"], content: parseContent(content, role, `${path}.content`) };
}

function parseContent(content: unknown, role: string, path: string): string {
  if (typeof content === "string") return content;
  // An assistant turn that only calls tools has no content.
  if ((content === null || content === undefined) && role === "assistant") return "";
  if (!Array.isArray(content)) throw invalidParam(path, `${path} must be a string or an array of text parts`);
  return content
    .map((part, i) => {
      const p = part as Body | null;
      if (p?.type !== "text" || typeof p.text !== "string") {
        throw invalidParam(`${path}[${i}]`, `${path}[${i}]: only text parts are supported`);
      }
      return p.text;
    })
    .join("");
}

interface NumberRule {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  integer?: boolean;
}

function optionalNumber(body: Body, key: string, rule: NumberRule): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isSafeInteger(value)) &&
    (rule.min === undefined || (rule.exclusiveMin ? value > rule.min : value >= rule.min)) &&
    (rule.max === undefined || value <= rule.max);
  if (!ok) throw invalidParam(key, `${key} must be ${describeRule(rule)}, got ${JSON.stringify(value)}`);
  return value;
}

function describeRule(rule: NumberRule): string {
  const kind = rule.integer ? "an integer" : "a number";
  const low = rule.min === undefined ? "" : ` ${rule.exclusiveMin ? ">" : ">="} ${rule.min}`;
  const high = rule.max === undefined ? "" : `${low ? " and" : ""} <= ${rule.max}`;
  return `${kind}${low}${high}`;
}

function optionalBoolean(body: Body, key: string, param = key): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw invalidParam(param, `${param} must be true or false`);
  return value;
}
