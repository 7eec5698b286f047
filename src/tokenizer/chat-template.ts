// Chat templates: compile a model's jinja template once and render conversations the way
// Hugging Face's apply_chat_template does (special tokens and `tools` in the context).
import { Template } from "@huggingface/jinja";
import { NodeError } from "../errors.ts";

/** One conversation turn as templates see it (OpenAI-like; extra keys such as tool_calls pass through). */
export interface TemplateMessage {
  role: string;
  content: unknown;
  [extra: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Tool (function) definitions, passed to the template as `tools`. */
  tools?: readonly unknown[];
  /** Append the header that asks the model to answer (default true). */
  addGenerationPrompt?: boolean;
  /** More template variables (e.g. `date_string`); they win over the defaults. */
  extra?: Record<string, unknown>;
}

export type RenderChat = (messages: readonly TemplateMessage[], options?: ChatTemplateOptions) => string;

/**
 * Compiles `source` (a jinja chat template) into a render function. `specialTokens` are the
 * `bos_token`, `eos_token`, ... strings templates refer to. `origin` names the file in errors.
 * @throws NodeError E_TOKENIZER when the template does not parse; E_INVALID_REQUEST when rendering fails
 * (including the template's own raise_exception, e.g. roles that do not alternate).
 */
export function compileChatTemplate(source: string, specialTokens: Record<string, string>, origin: string): RenderChat {
  let template: Template;
  try {
    template = new Template(source);
  } catch (cause) {
    throw new NodeError("E_TOKENIZER", `${origin}: chat_template does not parse: ${String(cause)}`, { cause });
  }
  return (messages, options = {}) => {
    const context: Record<string, unknown> = {
      ...specialTokens,
      messages,
      // Hugging Face passes None, not "undefined", so `tools is not none` checks behave.
      tools: options.tools ?? null,
      documents: null,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      ...options.extra,
    };
    try {
      return template.render(context);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      // The template judged the conversation (roles out of order, tool message without tools): the client's fault.
      throw new NodeError("E_INVALID_REQUEST", `chat template of ${origin} refused the conversation: ${reason}`, {
        cause,
      });
    }
  };
}

/**
 * Picks the template text from a tokenizer_config.json value: a string, or the "default" entry of
 * Hugging Face's list form `[{name, template}]`.
 */
export function pickChatTemplate(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (!Array.isArray(value)) return undefined;
  const named = new Map<string, string>();
  for (const entry of value) {
    const e = entry as { name?: unknown; template?: unknown };
    if (typeof e.name === "string" && typeof e.template === "string") named.set(e.name, e.template);
  }
  return named.get("default");
}
