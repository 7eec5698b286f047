// The answer stream the API's responders read: the cluster's text events with tool calls split out of the
// text (when the request offered tools), and the finish reason "tool_calls" when the model called one.
import type { FinishReason, GenerationEvent, Usage } from "../../cluster/types.ts";
import type { ToolCall } from "./parse.ts";
import type { ToolPlan } from "./request.ts";
import { createCallSplitter } from "./stream.ts";

export type AnswerFinish = FinishReason | "tool_calls";

export type AnswerEvent =
  | { kind: "text"; text: string }
  | { kind: "tool_call"; call: ToolCall; index: number }
  | { kind: "done"; finishReason: AnswerFinish; usage: Usage; stopSequence?: string };

/** `events` as answer events; without a plan they pass through unchanged. */
export async function* withToolCalls(
  events: AsyncIterable<GenerationEvent>,
  plan: ToolPlan | null,
): AsyncGenerator<AnswerEvent> {
  if (!plan) return yield* events;
  const splitter = createCallSplitter({ offered: plan.offered, parallel: plan.parallel });
  for await (const event of events) {
    if (event.kind === "text") {
      yield* splitter.push(event.text);
      continue;
    }
    yield* splitter.finish();
    yield splitter.callCount > 0 ? { ...event, finishReason: "tool_calls" } : event;
    return;
  }
}
