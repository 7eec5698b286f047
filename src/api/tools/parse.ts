// Tool calls in generated text: the formats model families emit, parsed into OpenAI-style calls. Pure.
// Anything that does not parse exactly (broken JSON, an unclosed marker, a tool nobody offered) stays plain
// text: a model's malformed call is an answer the client can read, never a server error.

/** One call as the API returns it: `arguments` is a JSON object's text, as OpenAI sends it. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

export interface ParsedOutput {
  /** The text around the calls (all of it when no call parsed). */
  content: string;
  calls: ToolCall[];
}

/** Openers of the marker formats; text after one of them is held back while streaming. */
export const CALL_OPENERS = [
  "<tool_call>", // Qwen 2.5/3, Hermes
  "[TOOL_CALLS]", // Mistral (when the tokenizer keeps it as text)
  "<｜tool▁calls▁begin｜>", // DeepSeek V3 / R1
  "<｜tool▁call▁begin｜>", // DeepSeek V3.1 single call
] as const;

/** A fresh OpenAI-style call id. */
export const newCallId = (): string => `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;

/**
 * Split `text` into content and tool calls. `offered` is the set of tool names the request offered (a call to
 * another name is not a call). The first format that parses wins; a text whose markers are broken is content.
 */
export function parseToolCalls(text: string, offered: ReadonlySet<string>, makeId = newCallId): ParsedOutput {
  const attempts = [hermes, deepseek, mistral, bareJson];
  for (const attempt of attempts) {
    const found = attempt(text);
    if (!found) continue;
    if (found.calls.length === 0 || found.calls.some((c) => !offered.has(c.name))) continue;
    return {
      content: found.content,
      calls: found.calls.map((c) => ({ id: makeId(), name: c.name, arguments: JSON.stringify(c.arguments) })),
    };
  }
  return { content: text, calls: [] };
}

// --- internal ---

interface RawCall {
  name: string;
  arguments: Record<string, unknown>;
}
type Found = { content: string; calls: RawCall[] } | null;

/** `<tool_call>{"name": …, "arguments": {…}}</tool_call>`, any number, text around them is content. */
function hermes(text: string): Found {
  return betweenMarkers(text, "<tool_call>", "</tool_call>", (inner) => callFromObject(parseJson(inner)));
}

/**
 * DeepSeek: `<｜tool▁calls▁begin｜>` then per call `<｜tool▁call▁begin｜>[function<｜tool▁sep｜>]NAME` followed by
 * either a fenced json block (V3, R1) or `<｜tool▁sep｜>{json}` (V3.1), then `<｜tool▁call▁end｜>`.
 */
function deepseek(text: string): Found {
  if (!text.includes("<｜tool▁call▁begin｜>")) return null;
  const stripped = text.replace("<｜tool▁calls▁begin｜>", "").replace("<｜tool▁calls▁end｜>", "");
  return betweenMarkers(stripped, "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", (inner) => {
    const parts = inner.split("<｜tool▁sep｜>");
    if (parts[0] === "function" && parts.length === 2) {
      const m = /^([^\n]+)\n```(?:json)?\n([\s\S]*)\n```\s*$/.exec(parts[1]!);
      return m ? callOf(m[1]!.trim(), parseJson(m[2]!)) : null;
    }
    if (parts.length === 2) return callOf(parts[0]!.trim(), parseJson(parts[1]!));
    return null;
  });
}

/** Mistral: `[TOOL_CALLS][{"name": …, "arguments": {…}}, …]`, or the newer `[TOOL_CALLS]NAME[ARGS]{…}` per call. */
function mistral(text: string): Found {
  const at = text.indexOf("[TOOL_CALLS]");
  if (at < 0) return null;
  const content = text.slice(0, at).trim();
  const rest = text.slice(at);
  if (rest.includes("[ARGS]")) {
    const calls: RawCall[] = [];
    for (const piece of rest.split("[TOOL_CALLS]").slice(1)) {
      const [name, args, ...extra] = piece.split("[ARGS]");
      const call = extra.length === 0 && name && args !== undefined ? callOf(name.trim(), parseJson(args)) : null;
      if (!call) return null;
      calls.push(call);
    }
    return { content, calls };
  }
  const calls = callsFromList(parseJson(rest.slice("[TOOL_CALLS]".length)));
  return calls ? { content, calls } : null;
}

/**
 * The whole answer is JSON: Llama 3.1/3.2's `{"name": …, "parameters": {…}}` (its `<|python_tag|>` is a special
 * token, already gone from the text), or a list of such calls (Mistral's, when `[TOOL_CALLS]` was special).
 */
function bareJson(text: string): Found {
  const value = parseJson(text);
  if (Array.isArray(value)) {
    const calls = callsFromList(value);
    return calls ? { content: "", calls } : null;
  }
  const call = callFromObject(value);
  return call ? { content: "", calls: [call] } : null;
}

/** Every `open … close` span parsed by `parse`; the text outside the spans is the content. Null if any span fails. */
function betweenMarkers(text: string, open: string, close: string, parse: (inner: string) => RawCall | null): Found {
  if (!text.includes(open)) return null;
  const calls: RawCall[] = [];
  let content = "";
  let at = 0;
  for (;;) {
    const start = text.indexOf(open, at);
    if (start < 0) break;
    const end = text.indexOf(close, start + open.length);
    if (end < 0) return null; // cut off (max_tokens) or broken: not a call
    const call = parse(text.slice(start + open.length, end).trim());
    if (!call) return null;
    calls.push(call);
    content += text.slice(at, start);
    at = end + close.length;
  }
  content += text.slice(at);
  return { content: content.trim(), calls };
}

function callsFromList(value: unknown): RawCall[] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  const calls = value.map(callFromObject);
  return calls.every((c) => c !== null) ? (calls as RawCall[]) : null;
}

/** `{name, arguments}` or `{name, parameters}` (Llama), arguments an object or a JSON object's text. */
function callFromObject(value: unknown): RawCall | null {
  if (!isObject(value)) return null;
  const keys = Object.keys(value);
  if (keys.some((k) => k !== "name" && k !== "arguments" && k !== "parameters")) return null;
  const args = value.arguments ?? value.parameters ?? {};
  return callOf(value.name, typeof args === "string" ? parseJson(args) : args);
}

function callOf(name: unknown, args: unknown): RawCall | null {
  if (typeof name !== "string" || name.length === 0 || !isObject(args)) return null;
  return { name, arguments: args };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text.trim());
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
