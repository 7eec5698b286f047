// Talking to the local node's HTTP API from a CLI command (`exo ps`, `exo stop`): the base URL and key from
// --api-host/--api-port and EXO_API_KEY, and failures turned into sentences that say what to do.
import { NodeError } from "../errors.ts";

export interface NodeApi {
  baseUrl: string;
  /** The JSON body of a successful answer. @throws NodeError E_PEER_DOWN (no node), or the API's message */
  call(method: "GET" | "DELETE", path: string): Promise<unknown>;
}

export async function nodeApi(flags: { "api-host"?: string; "api-port"?: string }): Promise<NodeApi> {
  const { parseApiClientOptions } = await import("../config/node-options.ts");
  const { baseUrl, apiKey } = parseApiClientOptions(flags);
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  return {
    baseUrl,
    async call(method, path) {
      let res: Response;
      try {
        res = await fetch(`${baseUrl}${path}`, { method, headers, signal: AbortSignal.timeout(60_000) });
      } catch (err) {
        throw new NodeError(
          "E_PEER_DOWN",
          `no node answers at ${baseUrl} (${(err as Error).message}): start one with \`exo start\`, or pass --api-host/--api-port`,
        );
      }
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      if (res.ok) return body;
      const why = body?.error?.message ?? `HTTP ${res.status}`;
      throw new NodeError(res.status === 404 ? "E_NOT_FOUND" : "E_PEER_DOWN", why);
    },
  };
}

/** The flags every command that talks to a node takes. */
export const API_FLAGS = {
  "api-host": { type: "string", description: "host of the node's API (default 127.0.0.1)" },
  "api-port": { type: "string", description: "port of the node's API (default 52415)" },
} as const;
