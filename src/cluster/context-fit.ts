// Fit a request into the model's context window before any work: a prompt that leaves no room for one token
// of answer is refused (E_CONTEXT_LENGTH, the API's 400 context_length_exceeded); a max_tokens beyond what is
// left is lowered to it, so generation ends with finish_reason "length" at the window and never runs past it.
import { NodeError } from "../errors.ts";

/** The max_tokens that fits `window` after a prompt of `promptTokens`. @throws E_CONTEXT_LENGTH */
export function fitToWindow(opts: {
  modelId: string;
  promptTokens: number;
  maxTokens: number;
  /** Undefined: the model's files name no window, nothing to fit. */
  window: number | undefined;
  /** What the prompt is made of, for the message ("messages" or "prompt"). */
  what: string;
}): number {
  const { window, promptTokens } = opts;
  if (window === undefined) return opts.maxTokens;
  if (promptTokens >= window)
    throw new NodeError(
      "E_CONTEXT_LENGTH",
      `${opts.modelId}'s context window is ${window} tokens (prompt and answer), but the request needs ${promptTokens} for its ${opts.what}, leaving no room for an answer; shorten the ${opts.what}`,
    );
  return Math.min(opts.maxTokens, window - promptTokens);
}
