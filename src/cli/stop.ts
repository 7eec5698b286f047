// `exo stop MODEL`: unload MODEL on every node of the cluster, through the local node's API
// (DELETE /v1/placements/{model}). The next request for it places and loads it again.
import { defineCommand } from "citty";
import { API_FLAGS, nodeApi } from "./node-api.ts";

export default defineCommand({
  meta: { name: "stop", description: "Unload a model on every node of the cluster." },
  args: {
    model: { type: "positional", required: true, description: "model id (as `exo ps` shows it)" },
    ...API_FLAGS,
  },
  async run({ args }) {
    const api = await nodeApi(args);
    const out = (await api.call("DELETE", `/v1/placements/${encodeURIComponent(args.model)}`)) as {
      model: string;
      unloaded_from: string[];
    };
    process.stdout.write(`stopped ${out.model} on ${out.unloaded_from.join(", ")}\n`);
  },
});
