// `exo topology`: the cluster as a running node sees it, read from that node's API (GET /topology):
// nodes with capabilities, then `a --> b [MAN]` links. Start a node first (`exo start`).
import { defineCommand } from "citty";
import { NodeError } from "../errors.ts";

export default defineCommand({
  meta: { name: "topology", description: "Show the cluster as the running node sees it: nodes, capabilities, links." },
  args: {
    "api-host": { type: "string", description: "host of the node's API (default 127.0.0.1)" },
    "api-port": { type: "string", description: "port of the node's API (default 52415)" },
    json: { type: "boolean", description: "print exo's /topology JSON instead of text" },
  },
  async run({ args }) {
    const { parseApiClientOptions } = await import("../config/node-options.ts");
    const { parseTopologyJson, renderTopology } = await import("../topology/graph.ts");
    const { baseUrl, apiKey } = parseApiClientOptions(args);
    const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const get = async (path: string) => {
      let res: Response;
      try {
        res = await fetch(`${baseUrl}${path}`, { headers });
      } catch (err) {
        throw new NodeError(
          "E_PEER_DOWN",
          `no node answers at ${baseUrl} (${(err as Error).message}): start one with \`exo start\`, or pass --api-host/--api-port`,
        );
      }
      if (!res.ok)
        throw new NodeError("E_PEER_DOWN", `${baseUrl}${path} answered HTTP ${res.status}: ${await res.text()}`);
      return res.json();
    };
    const json = await get("/topology");
    if (args.json) return void process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    const self = await get("/debug/net").then(
      (d) => (d as { nodeId?: string }).nodeId,
      () => undefined,
    );
    process.stdout.write(`${renderTopology(parseTopologyJson(json), self)}\n`);
  },
});
