// The tool fields of a chat request (OpenAI's `tools`, `tool_choice`, `parallel_tool_calls`), validated, and
// the conversation made ready for a chat template: tool calls' arguments as objects, as templates expect them.
import type { ChatMessage } from "../../cluster/types.ts";
import { invalidParam } from "../errors.ts";

/** What a request asks of tools: which are offered to the model, and how its answer is read. */
export interface ToolPlan {
  /** Tools rendered into the prompt (OpenAI's function shape); empty: none. */
  tools: FunctionTool[];
  /** Names a parsed call may use. */
  offered: Set<string>;
  /** Only the first call is kept when false. */
  parallel: boolean;
}

export interface FunctionTool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

type Body = Record<string, unknown>;

/**
 * Reads `tools`, `tool_choice` and `parallel_tool_calls`. `none` offers nothing (the model answers in text);
 * a named function offers only that one; `auto` and `required` offer all of them (nothing constrains the
 * decoder, so `required` is a request the model usually, not always, honours). Returns null without tools.
 * @throws E_INVALID_REQUEST naming the field
 */
export function parseToolPlan(body: Body): ToolPlan | null {
  const raw = body.tools;
  const choice = body.tool_choice;
  if (raw === undefined || raw === null) {
    if (choice !== undefined && choice !== null && choice !== "none" && choice !== "auto")
      throw invalidParam("tool_choice", "tool_choice needs tools");
    return null;
  }
  if (!Array.isArray(raw)) throw invalidParam("tools", "tools must be an array");
  const tools = raw.map((t, i) => parseTool(t, `tools[${i}]`));
  const names = new Set(tools.map((t) => t.function.name));
  if (names.size !== tools.length) throw invalidParam("tools", "tools must have distinct names");
  const parallel = body.parallel_tool_calls ?? true;
  if (typeof parallel !== "boolean")
    throw invalidParam("parallel_tool_calls", "parallel_tool_calls must be true or false");
  if (tools.length === 0) return null;
  if (choice === "none") return null;
  if (choice === undefined || choice === null || choice === "auto" || choice === "required")
    return { tools, offered: names, parallel };
  const name = (choice as { function?: { name?: unknown } } | null)?.function?.name;
  if (typeof choice !== "object" || (choice as Body).type !== "function" || typeof name !== "string") {
    throw invalidParam(
      "tool_choice",
      'tool_choice must be "none", "auto", "required" or {"type":"function","function":{"name":…}}',
    );
  }
  const named = tools.filter((t) => t.function.name === name);
  if (named.length === 0) throw invalidParam("tool_choice", `tool_choice names ${name}, which is not in tools`);
  return { tools: named, offered: new Set([name]), parallel };
}

/** Assistant tool calls with their `arguments` parsed (templates render objects); other messages unchanged. */
export function templateReady(messages: ChatMessage[]): ChatMessage[] {
  return messages.map((m) => {
    const calls = m.tool_calls;
    if (m.role !== "assistant" || !Array.isArray(calls)) return m;
    return {
      ...m,
      tool_calls: calls.map((c, i) => {
        const fn = (c as { function?: { name?: unknown; arguments?: unknown } }).function;
        if (typeof fn?.name !== "string") {
          throw invalidParam(`tool_calls[${i}].function.name`, "an assistant tool call needs function.name");
        }
        return { ...(c as object), function: { name: fn.name, arguments: parseArguments(fn.arguments, i) } };
      }),
    };
  });
}

// --- internal ---

function parseTool(raw: unknown, path: string): FunctionTool {
  const t = raw as { type?: unknown; function?: Body } | null;
  if (typeof t !== "object" || t === null || t.type !== "function" || typeof t.function !== "object") {
    throw invalidParam(path, `${path} must be {"type":"function","function":{…}}`);
  }
  const fn = t.function;
  if (typeof fn.name !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(fn.name)) {
    throw invalidParam(`${path}.function.name`, `${path}.function.name must be 1-64 letters, digits, _ . or -`);
  }
  const params = fn.parameters;
  if (params !== undefined && (typeof params !== "object" || params === null || Array.isArray(params))) {
    throw invalidParam(`${path}.function.parameters`, `${path}.function.parameters must be a JSON schema object`);
  }
  return {
    type: "function",
    function: {
      name: fn.name,
      ...(typeof fn.description === "string" ? { description: fn.description } : {}),
      ...(params ? { parameters: params as Record<string, unknown> } : {}),
    },
  };
}

function parseArguments(args: unknown, i: number): unknown {
  if (typeof args !== "string") return args ?? {};
  try {
    return JSON.parse(args);
  } catch {
    throw invalidParam(`tool_calls[${i}].function.arguments`, "a tool call's arguments must be a JSON object's text");
  }
}
