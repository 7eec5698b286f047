// Which files of a repo a stage needs: configs and tokenizer always, and only the weight files that hold
// its layers (from model.safetensors.index.json). Pure: file lists and weight maps in, paths out.
import type { LayerRange } from "../topology/types.ts";

/** Non-weight files a stage needs: configs, tokenizer, chat template; never code (*.py) or docs. */
const SUPPORT_FILE = /^[^/]+\.(json|jinja|tiktoken|txt|model)$/;

/** True for the small files every stage fetches (config.json, tokenizer files, the index, ...). */
export function isSupportFile(path: string): boolean {
  return SUPPORT_FILE.test(path) && !path.endsWith(".safetensors");
}

/** The layer a tensor belongs to (`model.layers.12.mlp…` → 12), or undefined for embeddings, norm, head. */
export function tensorLayer(name: string): number | undefined {
  const m = /(?:^|\.)(?:layers|h|blocks)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The weight files a stage needs, given the index's weight_map (tensor → file).
 * First stage: embeddings (and any other non-layer tensor, e.g. a vision tower). Last stage: final norm and
 * lm_head, and the embeddings too when the head is tied to them.
 */
export function weightFilesForStage(
  weightMap: Record<string, string>,
  range: LayerRange,
  nLayers: number,
  tiedEmbeddings: boolean,
): string[] {
  const first = range.layerStart === 0;
  const last = range.layerEnd === nLayers;
  const tied = tiedEmbeddings || !Object.keys(weightMap).some((t) => t.includes("lm_head"));
  const files = new Set<string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    const layer = tensorLayer(tensor);
    if (layer !== undefined) {
      if (layer >= range.layerStart && layer < range.layerEnd) files.add(file);
    } else if (isEmbedding(tensor)) {
      if (first || (last && tied)) files.add(file);
    } else if (isHead(tensor)) {
      if (last) files.add(file);
    } else if (first) {
      files.add(file);
    }
  }
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

// --- internal ---

function isEmbedding(tensor: string): boolean {
  return /(embed_tokens|wte|tok_embeddings|word_embeddings)\./.test(tensor);
}

function isHead(tensor: string): boolean {
  return tensor.startsWith("lm_head.") || /(^|\.)(norm|ln_f|final_layernorm)\.(weight|bias)$/.test(tensor);
}
