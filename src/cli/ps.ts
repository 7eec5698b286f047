// `exo ps`: the models placed on the cluster, read from the local node's API (GET /v1/placements): each
// node's layer range and memory, its download/load state, and the requests in flight.
import { defineCommand } from "citty";
import { API_FLAGS, nodeApi } from "./node-api.ts";
import { renderPlacements, type PlacementsJson } from "./ps-table.ts";

export default defineCommand({
  meta: { name: "ps", description: "Show the models placed on the cluster: each node's layers, memory, state." },
  args: { ...API_FLAGS, json: { type: "boolean", description: "print the API's JSON instead of a table" } },
  async run({ args }) {
    const api = await nodeApi(args);
    const json = (await api.call("GET", "/v1/placements")) as PlacementsJson;
    process.stdout.write(args.json ? `${JSON.stringify(json, null, 2)}\n` : `${renderPlacements(json)}\n`);
  },
});
