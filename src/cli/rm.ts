// `exo rm MODEL`: delete a model's downloaded files from this node's cache.
import { defineCommand } from "citty";

export default defineCommand({
  meta: { name: "rm", description: "Delete a model's downloaded files from this node." },
  args: {
    model: { type: "positional", required: true, description: "model id or Hugging Face repo" },
    "models-dir": {
      type: "string",
      description: "Hugging Face hub cache to use (default $HF_HUB_CACHE or $HF_HOME/hub)",
    },
  },
  async run({ args }) {
    const { createDefaultModelStore } = await import("../download/model-store.ts");
    const store = await createDefaultModelStore({ nodeId: "local", modelsDir: args["models-dir"] });
    const { deleted } = await store.deleteModel(args.model);
    process.stdout.write(deleted ? `removed ${args.model}\n` : `${args.model} has no downloaded files on this node\n`);
  },
});
