// exo's own routes, in exo's shapes: /v1/models (OpenAI list), /modelpool (SSE per model, or JSON on request),
// POST /download, GET /v1/download/progress, DELETE /models/{id}. All model state comes from deps.models.
import { NodeError } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";
import { readJsonBody } from "./body.ts";
import { invalidParam } from "./errors.ts";
import { DONE, SSE_HEADERS, sseData } from "./sse.ts";

/** Catalog models are "created" when the catalog was; a fixed stamp keeps the listing stable across calls. */
const CREATED = 1_700_000_000;

function modelObject(m: { id: string; name: string; layers: number; repo: string }, downloaded: boolean) {
  return {
    id: m.id,
    object: "model",
    created: CREATED,
    owned_by: "exo",
    name: m.name,
    layers: m.layers,
    repo: m.repo,
    ready: true,
    downloaded,
  };
}

/**
 * Whether each model's files are all on this node: the store's /modelpool says for the models it tracks; a model
 * it does not track is a local directory (or the embedded model), whose files are here by definition.
 */
async function downloadedOnThisNode(deps: ApiDeps): Promise<(id: string) => boolean> {
  const pool = (await deps.models.modelPool()) as Record<string, { downloaded?: unknown }> | null;
  return (id) => {
    const state = pool?.[id];
    return state ? state.downloaded === true : true;
  };
}

/** GET /v1/models: OpenAI's list shape, with exo's extra fields (name, layers, repo, ready, downloaded). */
export async function listModels(deps: ApiDeps): Promise<Response> {
  const downloaded = await downloadedOnThisNode(deps);
  const data = deps.inference.listModels().map((m) => modelObject(m, downloaded(m.id)));
  return Response.json({ object: "list", data });
}

/** GET /v1/models/{id}. @throws E_MODEL_UNKNOWN */
export async function retrieveModel(deps: ApiDeps, id: string): Promise<Response> {
  const model = deps.inference.listModels().find((m) => m.id === id);
  if (!model)
    throw new NodeError("E_MODEL_UNKNOWN", `model "${id}" is not served here; GET /v1/models lists the models`);
  return Response.json(modelObject(model, (await downloadedOnThisNode(deps))(id)));
}

/** exo streams one `data: {id: state}` event per model then [DONE]; `Accept: application/json` gets one object. */
export async function modelPool(deps: ApiDeps, req: Request): Promise<Response> {
  const pool = await deps.models.modelPool();
  const wantsJson = req.headers.get("accept")?.includes("application/json") ?? false;
  if (wantsJson || typeof pool !== "object" || pool === null) return Response.json(pool);
  const frames = Object.entries(pool as Record<string, unknown>).map(([id, state]) => sseData({ [id]: state }));
  return new Response(new Blob([...frames, DONE]), { headers: SSE_HEADERS });
}

/**
 * POST /download {model}: answered once the store knows the model can be fetched and run here; the files then
 * arrive in the background. @throws E_INVALID_REQUEST (no model), E_MODEL_UNKNOWN, E_DOWNLOAD_NOT_FOUND, E_MODEL_UNSUPPORTED
 */
export async function startDownload(deps: ApiDeps, req: Request, maxBodyBytes: number): Promise<Response> {
  const body = (await readJsonBody(req, maxBodyBytes)) as { model?: unknown } | null;
  const model = body?.model;
  if (typeof model !== "string" || model.length === 0)
    throw invalidParam("model", "model is required (a model id string)");
  await deps.models.startDownload(model);
  return Response.json({ status: "success", message: `Download started for model: ${model}` });
}

/** GET /v1/download/progress: the store's body as is (exo's shape). */
export function downloadProgress(deps: ApiDeps): Response {
  return Response.json(deps.models.downloadProgress() ?? {});
}

/** DELETE /models/{id}. @throws E_MODEL_UNKNOWN, E_NOT_FOUND when this node holds no files of it */
export async function deleteModel(deps: ApiDeps, id: string): Promise<Response> {
  const { deleted } = await deps.models.deleteModel(id);
  if (!deleted) throw new NodeError("E_NOT_FOUND", `model ${id} has no files on this node`);
  return Response.json({ status: "success", message: `Model ${id} deleted` });
}
