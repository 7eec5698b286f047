// The HTTP app as a plain fetch(req) → Response function. Minimal for now: /healthcheck and /topology.
// The OpenAI routes land in the API issue; server.ts only wires this into Bun.serve.
import type { ApiDeps } from "./deps.ts";

export type App = (req: Request) => Promise<Response>;

export function createApp(deps: ApiDeps): App {
  return async (req) => {
    const { pathname } = new URL(req.url);
    if (req.method === "GET" && pathname === "/healthcheck") return Response.json({ status: "ok" });
    if (req.method === "GET" && pathname === "/topology") return Response.json(deps.topology());
    return Response.json(
      { error: { message: `no route ${req.method} ${pathname}`, type: "invalid_request_error", param: null, code: "not_found" } },
      { status: 404 },
    );
  };
}
