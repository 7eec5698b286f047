// Bun.serve wiring for the HTTP app; nothing else here knows about sockets.
import type { App } from "./app.ts";

export interface ApiServer {
  port: number;
  stop(): Promise<void>;
}

/** Serve `app` on host:port (0 picks a free port). SSE routes disable the idle timeout per request. */
export function startApiServer(app: App, opts: { host: string; port: number }): ApiServer {
  const server = Bun.serve({
    hostname: opts.host,
    port: opts.port,
    // Long cross-node prefills look idle to Bun; streaming routes also call server.timeout(req, 0).
    idleTimeout: 255,
    fetch: (req, srv) => {
      if (req.headers.get("accept")?.includes("text/event-stream") || req.method === "POST") srv.timeout(req, 0);
      return app(req);
    },
  });
  return {
    port: server.port ?? opts.port,
    stop: () => server.stop(true),
  };
}
