// Bun.serve wiring for the HTTP app; nothing else here knows about sockets.
import { listenError } from "../net/listen-error.ts";
import type { App } from "./app.ts";

export interface ApiServer {
  port: number;
  stop(): Promise<void>;
}

/**
 * Serve `app` on host:port (0 picks a free port). SSE routes disable the idle timeout per request.
 * @throws NodeError E_CONFIG_INVALID when the address cannot be bound (one line naming the flag to change)
 */
export function startApiServer(app: App, opts: { host: string; port: number }): ApiServer {
  let server: ReturnType<typeof serve>;
  try {
    server = serve(app, opts);
  } catch (err) {
    throw listenError(opts.host, opts.port, "--api-port", err);
  }
  return {
    port: server.port ?? opts.port,
    stop: () => server.stop(true),
  };
}

function serve(app: App, opts: { host: string; port: number }) {
  return Bun.serve({
    hostname: opts.host,
    port: opts.port,
    // Long cross-node prefills look idle to Bun; streaming routes also call server.timeout(req, 0).
    idleTimeout: 255,
    fetch: (req, srv) => {
      if (req.headers.get("accept")?.includes("text/event-stream") || req.method === "POST") srv.timeout(req, 0);
      return app(req);
    },
  });
}
