// The Ollama API on the API's port (/api/chat, /api/generate, /api/tags, /api/ps, /api/show, /api/version), so
// clients pointed at OLLAMA_HOST=http://host:52415 work. Generation runs through the same machinery as OpenAI's.
import { createHash } from "node:crypto";
import { NodeError } from "../errors.ts";
import { VERSION } from "../version.ts";
import type { ModelInfo } from "../cluster/types.ts";
import type { ApiDeps } from "./deps.ts";
import type { GenerateRouteOptions } from "./completions.ts";
import { readJsonBody } from "./body.ts";
import { errorHeaders, invalidParam } from "./errors.ts";
import { placementJson } from "./placements.ts";
import { answerOnce, answerStream, startGeneration, type StreamDialect } from "./generation.ts";
import {
  finalFields,
  ndjsonLine,
  ollamaError,
  ollamaLines,
  ollamaToolCall,
  parseOllamaChat,
  parseOllamaGenerate,
} from "./ollama-format.ts";

/** Ollama's error response: `{"error": "…"}`. */
export function ollamaErrorResponse(err: unknown, headers?: Record<string, string>): Response {
  const { status, body } = ollamaError(err);
  return Response.json(body, { status, headers: errorHeaders(status, headers) });
}

const dialect = (name: string): StreamDialect => ({
  name,
  errorResponse: (err) => ollamaErrorResponse(err),
  framing: { frame: ndjsonLine, error: (err) => ndjsonLine(ollamaError(err).body), done: null, keepAlive: null },
  headers: { "content-type": "application/x-ndjson" },
});
const CHAT = dialect("ollama chat");
const GENERATE = dialect("ollama generate");

/** POST /api/chat: NDJSON lines by default, one object with `stream: false`. */
export async function handleOllamaChat(req: Request, deps: ApiDeps, opts: GenerateRouteOptions): Promise<Response> {
  const { request, stream, toolPlan } = parseOllamaChat(await readJsonBody(req, opts.maxBodyBytes));
  const gen = startGeneration(req, deps, request, toolPlan, CHAT);
  const lines = ollamaLines("chat", request.modelId, gen.events, () => performance.now());
  if (stream) return answerStream(gen, lines, CHAT, opts);
  const started = performance.now();
  return answerOnce(gen, CHAT, (answer) => {
    const ms = performance.now() - started;
    const message = {
      role: "assistant",
      content: answer.text,
      ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls.map(ollamaToolCall) } : {}),
    };
    const timings = { totalNs: Math.round(ms * 1e6), promptNs: 0, evalNs: Math.round(ms * 1e6) };
    return { ...head(request.modelId), message, ...finalFields(answer.finishReason, answer.usage, timings) };
  });
}

/** POST /api/generate; an empty prompt only checks the model, as Ollama's "load" does. */
export async function handleOllamaGenerate(req: Request, deps: ApiDeps, opts: GenerateRouteOptions): Promise<Response> {
  const { request, stream, empty } = parseOllamaGenerate(await readJsonBody(req, opts.maxBodyBytes));
  if (empty) {
    modelOf(deps, request.modelId);
    return Response.json({ ...head(request.modelId), response: "", done: true, done_reason: "load" });
  }
  const gen = startGeneration(req, deps, request, null, GENERATE);
  if (stream)
    return answerStream(
      gen,
      ollamaLines("generate", request.modelId, gen.events, () => performance.now()),
      GENERATE,
      opts,
    );
  const started = performance.now();
  return answerOnce(gen, GENERATE, (answer) => {
    const ns = Math.round((performance.now() - started) * 1e6);
    const timings = { totalNs: ns, promptNs: 0, evalNs: ns };
    return {
      ...head(request.modelId),
      response: answer.text,
      ...finalFields(answer.finishReason, answer.usage, timings),
    };
  });
}

/** GET /api/tags: the models this node serves whose files are here. */
export async function ollamaTags(deps: ApiDeps): Promise<Response> {
  const pool = (await deps.models.modelPool()) as Record<string, { downloaded?: boolean; total_size?: number }> | null;
  const local = deps.inference.listModels().filter((m) => pool?.[m.id]?.downloaded !== false);
  return Response.json({
    models: local.map((m) => ({
      ...modelEntry(m),
      modified_at: new Date(0).toISOString(),
      size: pool?.[m.id]?.total_size ?? 0,
    })),
  });
}

/** GET /api/ps: the models placed on the cluster (see `exo ps` for each node's layers). */
export async function ollamaPs(deps: ApiDeps): Promise<Response> {
  const placed = deps.cluster?.placements() ?? [];
  const served = new Map(deps.inference.listModels().map((m) => [m.id as string, m]));
  return Response.json({
    models: placed.map((p) => {
      const m = served.get(p.modelId);
      return {
        ...(m ? modelEntry(m) : { name: p.modelId, model: p.modelId, digest: digestOf(p.modelId), details: details() }),
        size: 0,
        size_vram: 0,
        expires_at: new Date(Date.now() + 365 * 24 * 3600_000).toISOString(),
        exo: placementJson(p),
      };
    }),
  });
}

/** POST /api/show {model}: what the node knows of one model. */
export async function ollamaShow(req: Request, deps: ApiDeps, opts: GenerateRouteOptions): Promise<Response> {
  const body = (await readJsonBody(req, opts.maxBodyBytes)) as { model?: unknown; name?: unknown } | null;
  const id = body?.model ?? body?.name;
  if (typeof id !== "string" || id.length === 0) throw invalidParam("model", "model is required");
  const m = modelOf(deps, id);
  return Response.json({
    modelfile: "",
    parameters: "",
    template: "",
    details: details(),
    model_info: { "general.basename": m.name, "general.block_count": m.layers, "exo.repo": m.repo },
    capabilities: ["completion", "tools"],
    modified_at: new Date(0).toISOString(),
  });
}

/** GET /api/version: this build's version. */
export const ollamaVersion = (): Response => Response.json({ version: VERSION });

// --- internal ---

const head = (model: string) => ({ model, created_at: new Date().toISOString() });

function modelOf(deps: ApiDeps, id: string): ModelInfo {
  const m = deps.inference.listModels().find((x) => x.id === id);
  if (!m) throw new NodeError("E_MODEL_UNKNOWN", `model "${id}" not found; GET /api/tags lists the models`);
  return m;
}

/** Ollama identifies models by digest; ours is a stable hash of the repo, not of the files. */
const digestOf = (repo: string) => createHash("sha256").update(repo).digest("hex");

const details = () => ({
  parent_model: "",
  format: "safetensors",
  family: "",
  families: null,
  parameter_size: "",
  quantization_level: "",
});

function modelEntry(m: ModelInfo) {
  return { name: m.id, model: m.id, digest: digestOf(m.repo), details: details() };
}
