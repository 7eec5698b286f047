// POST /v1/chat/completions and /v1/completions: validate, check the model, run the generation,
// answer as JSON or SSE. The client's disconnect aborts the generation (and so frees it on every stage).
import { NodeError, errorCode } from "../errors.ts";
import { logger } from "../log.ts";
import type { GenerationEvent } from "../cluster/types.ts";
import type { ApiDeps } from "./deps.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { readJsonBody } from "./body.ts";
import { parseChatBody, parseCompletionBody } from "./openai.ts";
import { chatCompletion, collect, createMeta, streamChunks, textCompletion, type Kind } from "./openai-responses.ts";
import { SSE_HEADERS, raceTimer, sseStream } from "./sse.ts";

const log = logger("api");

export interface GenerateRouteOptions {
  keepAliveMs: number;
  /** How long a stream may wait for its first event before the 200 headers go out (errors before it get a status). */
  headerWaitMs: number;
  maxBodyBytes: number;
}

/**
 * Handle a generation route. The model is resolved by the service (catalog ids, Hugging Face repo ids, local dirs):
 * its E_MODEL_UNKNOWN comes before the first event, so it is a 404 for streams too. @throws E_INVALID_REQUEST, E_BODY_TOO_LARGE
 */
export async function handleGenerate(
  kind: Kind,
  req: Request,
  deps: ApiDeps,
  opts: GenerateRouteOptions,
): Promise<Response> {
  const body = await readJsonBody(req, opts.maxBodyBytes);
  const { request, stream, includeUsage } = kind === "chat" ? parseChatBody(body) : parseCompletionBody(body);
  const abort = new AbortController();
  const onClientGone = () => abort.abort(new NodeError("E_CANCELLED", "the client disconnected"));
  req.signal.addEventListener("abort", onClientGone, { once: true });
  const meta = createMeta(kind, request.modelId);
  log.debug(`${meta.id}: ${kind} model=${request.modelId} stream=${stream} max_tokens=${request.maxTokens}`);
  const events = logDone(deps.inference.generate(request, abort.signal), meta.id, request.modelId);

  if (!stream) {
    try {
      const answer = await collect(events);
      return Response.json(kind === "chat" ? chatCompletion(meta, answer) : textCompletion(meta, answer));
    } catch (err) {
      abort.abort();
      return errorResponse(withParam(err, kind));
    } finally {
      req.signal.removeEventListener("abort", onClientGone);
    }
  }

  const chunks = streamChunks(kind, meta, events, includeUsage)[Symbol.asyncIterator]();
  const first = chunks.next();
  // Errors that come quickly (unknown model on the cluster, too big, capacity) still get a real status.
  const early = await raceTimer(
    first.then(
      () => null,
      (err: unknown) => ({ err }),
    ),
    opts.headerWaitMs,
  );
  if (early !== null && early !== "timeout") {
    abort.abort();
    req.signal.removeEventListener("abort", onClientGone);
    return errorResponse(withParam(early.err, kind));
  }
  const sse = sseStream(chunks, { keepAliveMs: opts.keepAliveMs, onCancel: onClientGone }, first);
  return new Response(sse, { headers: SSE_HEADERS });
}

// --- internal ---

/** A prompt beyond the context window is the fault of the request's `messages` (chat) or `prompt` field. */
function withParam(err: unknown, kind: Kind): unknown {
  if (errorCode(err) !== "E_CONTEXT_LENGTH") return err;
  return new ApiError("E_CONTEXT_LENGTH", (err as Error).message, kind === "chat" ? "messages" : "prompt");
}

/** Pass events through and log one line per finished request (the request's lifecycle, not its tokens). */
async function* logDone(
  events: AsyncIterable<GenerationEvent>,
  id: string,
  model: string,
): AsyncGenerator<GenerationEvent> {
  const started = performance.now();
  for await (const event of events) {
    if (event.kind === "done") {
      const ms = Math.round(performance.now() - started);
      log.info(
        `${id} ${model}: ${event.finishReason}, ${event.usage.promptTokens} prompt + ${event.usage.completionTokens} completion tokens in ${ms} ms`,
      );
    }
    yield event;
  }
}
