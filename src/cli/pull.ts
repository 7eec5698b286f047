// `exo pull MODEL`: download a model's files (all layers, or --layers a:b) into the cache, with progress bars.
import { defineCommand } from "citty";
import { assertRunnable } from "../models/spec/architectures.ts";
import { NodeError } from "../errors.ts";
import type { LayerRange } from "../topology/types.ts";
import { createDownloadBars } from "./download-bars.ts";

export default defineCommand({
  meta: {
    name: "pull",
    description: "Download a model's files to this node (catalog id, Hugging Face repo, or local dir).",
  },
  args: {
    model: { type: "positional", required: true, description: "model id, e.g. llama-3.2-1b, or org/name" },
    "models-dir": {
      type: "string",
      description: "Hugging Face hub cache to use (default $HF_HUB_CACHE or $HF_HOME/hub)",
    },
    layers: { type: "string", description: "only the files of layers START:END (half-open), as one stage would" },
  },
  async run({ args }) {
    const { createDefaultModelStore } = await import("../download/model-store.ts");
    const { formatBytes } = await import("../download/progress.ts");
    const store = await createDefaultModelStore({ nodeId: "local", modelsDir: args["models-dir"] });
    const model = await store.resolveModel(args.model, { allowLocal: true });
    // Like POST /download: a model this build cannot run is refused before anything is fetched.
    if (model.arch) assertRunnable(model.id, model.arch);
    const range = args.layers ? parseLayers(args.layers, model.layers) : { layerStart: 0, layerEnd: model.layers };
    const bars = createDownloadBars();
    let fetched = 0;
    let files = 0;
    try {
      const dir = await store.ensureShardFiles(model, range, (p) => {
        bars.update(p);
        fetched = p.sessionBytes;
        files = p.totalFiles;
      });
      bars.stop();
      const what = model.source.kind === "hub" ? model.source.repo : "local files";
      process.stdout.write(
        `pulled ${model.id} (${what}, layers ${range.layerStart}-${range.layerEnd - 1} of ${model.layers}): ${files} files, ${formatBytes(fetched)} fetched now, in ${dir}\n`,
      );
    } finally {
      bars.stop();
    }
  },
});

function parseLayers(text: string, nLayers: number): LayerRange {
  const m = /^(\d+):(\d+)$/.exec(text);
  const range = m ? { layerStart: Number(m[1]), layerEnd: Number(m[2]) } : undefined;
  if (!range || range.layerStart >= range.layerEnd || range.layerEnd > nLayers) {
    throw new NodeError(
      "E_CONFIG_INVALID",
      `--layers must be START:END with 0 <= START < END <= ${nLayers}, got ${text}`,
    );
  }
  return range;
}
