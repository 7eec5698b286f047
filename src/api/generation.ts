// One generation behind an HTTP route, for the dialects beyond OpenAI's (Anthropic Messages, Ollama): start it
// with the client's disconnect wired to its abort, then answer once (collected) or as a stream whose early
// errors still get a real status. Each dialect supplies its own body builders, framing and error shape.
import type { GenerateRequest } from "../cluster/types.ts";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { GenerateRouteOptions } from "./completions.ts";
import type { ApiDeps } from "./deps.ts";
import { collect, type Collected } from "./openai-responses.ts";
import { raceTimer, sseStream, type StreamFraming } from "./sse.ts";
import { type AnswerEvent, withToolCalls } from "./tools/events.ts";
import type { ToolPlan } from "./tools/request.ts";

const log = logger("api");

export interface Dialect {
  /** Name in the log line. */
  name: string;
  /** The error response of this dialect for anything thrown before the headers went out. */
  errorResponse(err: unknown): Response;
}

export interface StreamDialect extends Dialect {
  framing: StreamFraming;
  headers: Record<string, string>;
}

export interface Generation {
  events: AsyncGenerator<AnswerEvent>;
  abort(): void;
  /** Called when the client went away (stream cancelled). */
  onClientGone(): void;
  /** Detach from the request's signal once the answer is complete. */
  release(): void;
}

/** Start generating `request`; the client's disconnect aborts it (and so frees it on every stage). */
export function startGeneration(
  req: Request,
  deps: ApiDeps,
  request: GenerateRequest,
  toolPlan: ToolPlan | null,
  dialect: Dialect,
): Generation {
  const abort = new AbortController();
  const onClientGone = () => abort.abort(new NodeError("E_CANCELLED", "the client disconnected"));
  req.signal.addEventListener("abort", onClientGone, { once: true });
  log.debug(`${dialect.name}: model=${request.modelId} max_tokens=${request.maxTokens}`);
  return {
    events: withToolCalls(deps.inference.generate(request, abort.signal), toolPlan),
    abort: () => abort.abort(),
    onClientGone,
    release: () => req.signal.removeEventListener("abort", onClientGone),
  };
}

/** Collect the whole answer and build the body from it. */
export async function answerOnce(
  gen: Generation,
  dialect: Dialect,
  build: (answer: Collected) => unknown,
): Promise<Response> {
  try {
    return Response.json(build(await collect(gen.events)));
  } catch (err) {
    gen.abort();
    return dialect.errorResponse(err);
  } finally {
    gen.release();
  }
}

/**
 * Stream `chunks` (built from gen.events by the dialect). The headers wait up to `headerWaitMs` for the first
 * chunk, so that quick failures (unknown model, too big, capacity) are still answered with a status.
 */
export async function answerStream(
  gen: Generation,
  chunks: AsyncIterable<unknown>,
  dialect: StreamDialect,
  opts: GenerateRouteOptions,
): Promise<Response> {
  const it = chunks[Symbol.asyncIterator]();
  const first = it.next();
  const early = await raceTimer(
    first.then(
      () => null,
      (err: unknown) => ({ err }),
    ),
    opts.headerWaitMs,
  );
  if (early !== null && early !== "timeout") {
    gen.abort();
    gen.release();
    return dialect.errorResponse(early.err);
  }
  const body = sseStream(
    it,
    { keepAliveMs: opts.keepAliveMs, onCancel: gen.onClientGone, framing: dialect.framing },
    first,
  );
  return new Response(body, { headers: dialect.headers });
}
