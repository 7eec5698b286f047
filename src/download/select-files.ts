// Which files of a repo a stage needs: configs and tokenizer always, and only the weight files that hold
// its layers (from model.safetensors.index.json). Pure: file lists and weight maps in, paths out.
import { headIsTied, stageOwnsTensor } from "../models/spec/ownership.ts";
import type { LayerRange } from "../topology/types.ts";

/** Non-weight files a stage needs: configs, tokenizer, chat template; never code (*.py) or docs. */
const SUPPORT_FILE = /^[^/]+\.(json|jinja|tiktoken|txt|model)$/;

/** True for the small files every stage fetches (config.json, tokenizer files, the index, ...). */
export function isSupportFile(path: string): boolean {
  return SUPPORT_FILE.test(path) && !path.endsWith(".safetensors");
}

/**
 * The weight files a stage needs, given the index's weight_map (tensor → file): the files holding a tensor
 * the stage owns, by the same rule the loader reads tensors with (src/models/spec/ownership.ts).
 */
export function weightFilesForStage(
  weightMap: Record<string, string>,
  range: LayerRange,
  nLayers: number,
  tiedEmbeddings: boolean,
): string[] {
  const owns = stageOwnsTensor({ ...range, nLayers, tiedHead: headIsTied(tiedEmbeddings, Object.keys(weightMap)) });
  const files = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap)) if (owns(tensor)) files.add(file);
  return [...files].sort();
}

/**
 * Every file a stage needs from a repo listing. Without an index (a single-file repo) the stage
 * needs all *.safetensors files.
 */
export function filesForStage(
  repoFiles: readonly string[],
  weightMap: Record<string, string> | undefined,
  range: LayerRange,
  nLayers: number,
  tiedEmbeddings: boolean,
): string[] {
  const support = repoFiles.filter(isSupportFile);
  const weights = weightMap
    ? weightFilesForStage(weightMap, range, nLayers, tiedEmbeddings)
    : repoFiles.filter((f) => !f.includes("/") && f.endsWith(".safetensors"));
  return [...new Set([...support, ...weights])].sort();
}
