// The HTTP app as a plain fetch(req) → Response function: routing, bearer auth, CORS, and the one place
// where thrown errors become OpenAI-shaped responses. server.ts only wires this into Bun.serve.
import { hasApiKey } from "./auth.ts";
import { NodeError } from "../errors.ts";
import type { ApiDeps } from "./deps.ts";
import { ApiError, errorResponse } from "./errors.ts";
import { DEFAULT_MAX_BODY_BYTES } from "./body.ts";
import { handleGenerate, type GenerateRouteOptions } from "./completions.ts";
import { deleteModel, downloadProgress, listModels, modelPool, retrieveModel, startDownload } from "./exo-routes.ts";
import { anthropicErrorResponse, handleMessages } from "./anthropic.ts";
import {
  handleOllamaChat,
  handleOllamaGenerate,
  ollamaErrorResponse,
  ollamaPs,
  ollamaShow,
  ollamaTags,
  ollamaVersion,
} from "./ollama.ts";
import { clusterState, listPlacements, unloadPlacement } from "./placements.ts";
import { DASHBOARD_HTML } from "./dashboard/assets.ts";

export type App = (req: Request) => Promise<Response>;

export interface AppOptions {
  /** Interval of `: keep-alive` comments on a silent stream. */
  keepAliveMs?: number;
  headerWaitMs?: number;
  maxBodyBytes?: number;
}

const DEFAULTS: GenerateRouteOptions = { keepAliveMs: 5000, headerWaitMs: 1000, maxBodyBytes: DEFAULT_MAX_BODY_BYTES };

// Browsers (web chat UIs) call the API cross-origin, as they could with exo.
const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, content-type, x-api-key, anthropic-version",
} as const;

type Handler = (req: Request, param: string) => Response | Promise<Response>;

/** Routes served without the API key. */
const PUBLIC_PATHS = new Set(["/healthcheck", "/"]);

/** The dashboard: one self-contained page (script and styles inline), embedded in the executable. */
function dashboard(): Response {
  const headers = {
    "content-type": "text/html; charset=utf-8",
    // Only its own inline script and same-origin API calls: nothing from elsewhere, no framing.
    "content-security-policy":
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
  };
  return new Response(DASHBOARD_HTML, { headers });
}

/** The API as one fetch function over the node's services; `options` tune streams and limits (tests shorten them). */
export function createApp(deps: ApiDeps, options: AppOptions = {}): App {
  const opts: GenerateRouteOptions = { ...DEFAULTS, ...options };
  const routes = routeTable(deps, opts);
  return async (req) => {
    try {
      const { pathname } = new URL(req.url);
      if (req.method === "OPTIONS") return preflight(req);
      // The dashboard page holds no data: it asks for the key, then sends it on every API call.
      if (!PUBLIC_PATHS.has(pathname)) checkAuth(req, deps.apiKey);
      const { handler, param, allowed } = match(routes, req.method, pathname);
      if (!handler) {
        if (allowed.length > 0) return methodNotAllowed(req.method, pathname, allowed);
        throw new NodeError("E_NOT_FOUND", `no route ${req.method} ${pathname}`);
      }
      return withCors(await handler(req, param));
    } catch (err) {
      return errorResponseFor(new URL(req.url).pathname)(err, CORS);
    }
  };
}

// --- internal ---

function routeTable(deps: ApiDeps, opts: GenerateRouteOptions): Map<string, Record<string, Handler>> {
  const chat: Handler = (req) => handleGenerate("chat", req, deps, opts);
  const text: Handler = (req) => handleGenerate("text", req, deps, opts);
  const topology: Handler = () => Response.json(deps.topology());
  const progress: Handler = () => downloadProgress(deps);
  const models: Handler = () => listModels(deps);
  const oneModel: Record<string, Handler> = {
    GET: (_req, id) => retrieveModel(deps, id),
    DELETE: (_req, id) => deleteModel(deps, id),
  };
  const table: Record<string, Record<string, Handler>> = {
    "/healthcheck": { GET: () => Response.json({ status: "ok" }) },
    "/": { GET: dashboard },
    "/topology": { GET: topology },
    "/v1/topology": { GET: topology },
    "/v1/models": { GET: models },
    "/models": { GET: models },
    "/v1/models/*": oneModel,
    "/models/*": oneModel,
    "/v1/chat/completions": { POST: chat },
    "/v1/messages": { POST: (req) => handleMessages(req, deps, opts) },
    "/chat/completions": { POST: chat },
    "/v1/completions": { POST: text },
    "/completions": { POST: text },
    "/modelpool": { GET: (req) => modelPool(deps, req) },
    "/download": { POST: (req) => startDownload(deps, req, opts.maxBodyBytes) },
    "/v1/download/progress": { GET: progress },
    "/v1/placements": { GET: () => listPlacements(deps) },
    "/v1/placements/*": { DELETE: (_req, id) => unloadPlacement(deps, id) },
    "/v1/cluster": { GET: () => clusterState(deps) },
    "/download/progress": { GET: progress },
  };
  Object.assign(table, ollamaRoutes(deps, opts), debugRoutes(deps));
  return new Map(Object.entries(table));
}

/** The Ollama API, so `OLLAMA_HOST=http://host:52415` clients work. */
function ollamaRoutes(deps: ApiDeps, opts: GenerateRouteOptions): Record<string, Record<string, Handler>> {
  return {
    "/api/chat": { POST: (req) => handleOllamaChat(req, deps, opts) },
    "/api/generate": { POST: (req) => handleOllamaGenerate(req, deps, opts) },
    "/api/tags": { GET: () => ollamaTags(deps) },
    "/api/ps": { GET: () => ollamaPs(deps) },
    "/api/show": { POST: (req) => ollamaShow(req, deps, opts) },
    "/api/version": { GET: ollamaVersion },
  };
}

/** Most HEALTH round trips one /debug/health-burst may ask for. */
const MAX_BURST = 1000;

/** The /debug/ routes the node provides; behind the same auth as the rest, since they reveal the cluster. */
function debugRoutes({ debug }: ApiDeps): Record<string, Record<string, Handler>> {
  const table: Record<string, Record<string, Handler>> = {};
  const { state, net, healthBurst } = debug ?? {};
  if (state) table["/debug/state"] = { GET: async () => Response.json(await state()) };
  if (net) table["/debug/net"] = { GET: () => Response.json(net()) };
  if (healthBurst) {
    table["/debug/health-burst"] = {
      POST: async (req) => {
        const query = new URL(req.url).searchParams;
        const count = Math.min(MAX_BURST, Math.max(1, Number(query.get("count") ?? 10) || 10));
        const burst = await healthBurst(query.get("peer") ?? "", count);
        return Response.json(burst.body, { status: burst.ok ? 200 : 502 });
      },
    };
  }
  return table;
}

function match(routes: Map<string, Record<string, Handler>>, method: string, pathname: string) {
  let methods = routes.get(pathname);
  let param = "";
  if (!methods) {
    // One-segment wildcard: model ids like "llama-3.2-1b" (URL-encoded if they ever hold a slash).
    const cut = pathname.lastIndexOf("/");
    methods = routes.get(`${pathname.slice(0, cut)}/*`);
    param = decodeSegment(pathname.slice(cut + 1));
    if (param.length === 0) methods = undefined;
  }
  const verb = method === "HEAD" ? "GET" : method;
  return { handler: methods?.[verb], param, allowed: methods ? Object.keys(methods) : [] };
}

/** Each client family reads errors in its own shape: Anthropic's under /v1/messages, Ollama's under /api/, else OpenAI's. */
function errorResponseFor(pathname: string): (err: unknown, headers: Record<string, string>) => Response {
  if (pathname === "/v1/messages") return anthropicErrorResponse;
  if (pathname.startsWith("/api/")) return ollamaErrorResponse;
  return errorResponse;
}

/** A URL path segment, decoded. @throws E_INVALID_REQUEST for a broken percent-encoding (e.g. "%E0%A4%A") */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ApiError(
      "E_INVALID_REQUEST",
      `the path segment "${segment}" is not valid percent-encoding (URL-encode the model id)`,
    );
  }
}

function checkAuth(req: Request, apiKey: string | undefined): void {
  if (!hasApiKey(req, apiKey)) {
    throw new ApiError(
      "E_UNAUTHORIZED",
      "missing or wrong API key: send Authorization: Bearer <EXO_API_KEY> (or x-api-key)",
    );
  }
}

/** Allow whatever headers the browser asks for: SDKs add their own (x-stainless-*), and "*" would not cover Authorization. */
function preflight(req: Request): Response {
  const asked = req.headers.get("access-control-request-headers");
  const headers = {
    ...CORS,
    "access-control-max-age": "86400",
    ...(asked ? { "access-control-allow-headers": asked } : {}),
  };
  return new Response(null, { status: 204, headers });
}

function withCors(res: Response): Response {
  for (const [k, v] of Object.entries(CORS)) res.headers.set(k, v);
  return res;
}

function methodNotAllowed(method: string, pathname: string, allowed: string[]): Response {
  const message = `${method} is not allowed on ${pathname}; use ${allowed.join(", ")}`;
  const error = { message, type: "invalid_request_error", param: null, code: "method_not_allowed" };
  return Response.json({ error }, { status: 405, headers: { ...CORS, allow: allowed.join(", ") } });
}
