// Tool calls in a stream of text deltas: plain text flows through at once; from a call marker on (or from the
// first character when the answer opens like a bare JSON call) the text is held back, and at the end it is
// parsed into calls, or given out as text when it is not a valid call. Pure: no I/O, no clock.
import { CALL_OPENERS, newCallId, parseToolCalls, type ToolCall } from "./parse.ts";

export type SplitEvent = { kind: "text"; text: string } | { kind: "tool_call"; call: ToolCall; index: number };

export interface CallSplitter {
  /** The events a new text delta makes known. */
  push(text: string): SplitEvent[];
  /** The rest at the end of the generation. */
  finish(): SplitEvent[];
  /** Calls found so far (after finish: all of them). */
  readonly callCount: number;
}

export interface SplitterOptions {
  offered: ReadonlySet<string>;
  /** false: only the first call is kept (parallel_tool_calls: false). */
  parallel: boolean;
  makeId?: () => string;
}

export function createCallSplitter(opts: SplitterOptions): CallSplitter {
  let emitted = ""; // text already given out
  let held = "";
  let holding = false; // a marker (or a leading "{" / "[") was seen: everything from there waits for the end
  let callCount = 0;

  const text = (t: string): SplitEvent[] => (t.length > 0 ? [{ kind: "text", text: t }] : []);

  return {
    get callCount() {
      return callCount;
    },
    push(delta) {
      held += delta;
      if (holding) return [];
      const start = firstOpener(held);
      if (start >= 0) {
        holding = true;
        const before = held.slice(0, start);
        held = held.slice(start);
        emitted += before;
        return text(before);
      }
      // A bare JSON call (Llama 3) is the whole answer: hold it when the answer opens with { or [.
      if (emitted.trim().length === 0 && /^\s*[[{]/.test(held)) {
        holding = true;
        return [];
      }
      if (emitted.trim().length === 0 && held.trim().length === 0) return [];
      const keep = openerPrefixLength(held);
      const out = held.slice(0, held.length - keep);
      held = held.slice(held.length - keep);
      emitted += out;
      return text(out);
    },
    finish() {
      const rest = held;
      held = "";
      if (!holding) return text(rest);
      const parsed = parseToolCalls(rest, opts.offered, opts.makeId ?? newCallId);
      const calls = opts.parallel ? parsed.calls : parsed.calls.slice(0, 1);
      const events: SplitEvent[] = text(parsed.content);
      for (const call of calls) events.push({ kind: "tool_call", call, index: callCount++ });
      return events;
    },
  };
}

/** Where the earliest call marker starts in `text`, or -1. */
function firstOpener(text: string): number {
  let at = -1;
  for (const opener of CALL_OPENERS) {
    const i = text.indexOf(opener);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

/** Length of the longest suffix of `text` that could be the start of a marker (held until the next delta). */
function openerPrefixLength(text: string): number {
  let keep = 0;
  for (const opener of CALL_OPENERS) {
    for (let n = Math.min(opener.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(opener.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}
