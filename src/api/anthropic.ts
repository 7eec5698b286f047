// POST /v1/messages: Anthropic's Messages API over the same generation and tool machinery as the OpenAI routes.
import type { ApiDeps } from "./deps.ts";
import type { GenerateRouteOptions } from "./completions.ts";
import { readJsonBody } from "./body.ts";
import { errorHeaders } from "./errors.ts";
import {
  anthropicError,
  anthropicFrame,
  messageEvents,
  messageJson,
  newMessageId,
  parseMessagesBody,
} from "./anthropic-format.ts";
import { answerOnce, answerStream, startGeneration, type StreamDialect } from "./generation.ts";
import { SSE_HEADERS } from "./sse.ts";

/** The error response Anthropic's clients parse. */
export function anthropicErrorResponse(err: unknown, headers?: Record<string, string>): Response {
  const { status, body } = anthropicError(err);
  return Response.json(body, { status, headers: errorHeaders(status, headers) });
}

const encoder = new TextEncoder();

const DIALECT: StreamDialect = {
  name: "messages",
  errorResponse: (err) => anthropicErrorResponse(err),
  framing: {
    frame: anthropicFrame,
    error: (err) => encoder.encode(`event: error\ndata: ${JSON.stringify(anthropicError(err).body)}\n\n`),
    done: null,
    keepAlive: encoder.encode(`event: ping\ndata: {"type":"ping"}\n\n`),
  },
  headers: SSE_HEADERS,
};

export async function handleMessages(req: Request, deps: ApiDeps, opts: GenerateRouteOptions): Promise<Response> {
  const { request, stream, toolPlan } = parseMessagesBody(await readJsonBody(req, opts.maxBodyBytes));
  const gen = startGeneration(req, deps, request, toolPlan, DIALECT);
  const id = newMessageId();
  if (!stream) return answerOnce(gen, DIALECT, (answer) => messageJson(id, request.modelId, answer));
  return answerStream(gen, messageEvents(id, request.modelId, gen.events), DIALECT, opts);
}
