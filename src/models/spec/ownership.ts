// Which checkpoint tensors a stage owns for its layer range: the one rule that both download selection
// (which files to fetch) and loading (which tensors to read) apply, as mlx-lm's sharded loading does.
// Pure: tensor names in, decisions out.
import type { LayerRange } from "../../topology/types.ts";

/** What part of the model a tensor belongs to. */
export type TensorRole =
  | { kind: "layer"; layer: number }
  | { kind: "embedding" }
  | { kind: "final-norm" }
  | { kind: "head" }
  /** Never read: recomputed at run time (rotary inverse frequencies). */
  | { kind: "ignored" }
  /** Outside the text decoder (e.g. a vision tower): kept with the first stage, which owns the model's input. */
  | { kind: "other" };

/** The layer range a stage runs (half-open, of nLayers) and whether the head is the embedding. */
export interface StageOwnership extends LayerRange {
  nLayers: number;
  tiedHead: boolean;
}

const LAYER = /(?:^|\.)(?:layers|h|blocks)\.(\d+)\./;
const EMBEDDING = /(?:^|\.)(?:embed_tokens|wte|tok_embeddings|word_embeddings)\./;
const FINAL_NORM = /(?:^|\.)(?:norm|ln_f|final_layernorm)\.(?:weight|bias)$/;

/** Classifies one tensor name (HF naming; layer tensors of every family are `….layers.N.…`). */
export function tensorRole(name: string): TensorRole {
  if (name.includes("rotary_emb.inv_freq")) return { kind: "ignored" };
  const layer = LAYER.exec(name);
  if (layer) return { kind: "layer", layer: Number(layer[1]) };
  if (EMBEDDING.test(name)) return { kind: "embedding" };
  if (FINAL_NORM.test(name)) return { kind: "final-norm" };
  if (name.startsWith("lm_head.")) return { kind: "head" };
  return { kind: "other" };
}

/** The layer a tensor belongs to (`model.layers.12.mlp…` → 12), or undefined for embeddings, norm, head. */
export function tensorLayer(name: string): number | undefined {
  const role = tensorRole(name);
  return role.kind === "layer" ? role.layer : undefined;
}

/**
 * True when the stage owns `name`: its layers; the embedding on the first stage (and on the last when
 * the head is tied to it); the final norm and the head on the last; anything else on the first.
 */
export function stageOwnsTensor(stage: StageOwnership): (name: string) => boolean {
  const isFirst = stage.layerStart === 0;
  const isLast = stage.layerEnd === stage.nLayers;
  return (name) => {
    const role = tensorRole(name);
    switch (role.kind) {
      case "layer":
        return role.layer >= stage.layerStart && role.layer < stage.layerEnd;
      case "embedding":
        return isFirst || (isLast && stage.tiedHead);
      case "final-norm":
        return isLast;
      case "head":
        return isLast && !stage.tiedHead;
      case "ignored":
        return false;
      case "other":
        return isFirst;
    }
  };
}

/**
 * Whether the head is the embedding: config.json says so, the architecture always ties (Gemma), or the
 * checkpoint has no lm_head at all (Hugging Face then loads the embedding as the head).
 */
export function headIsTied(tieWordEmbeddings: boolean, tensorNames: Iterable<string>): boolean {
  if (tieWordEmbeddings) return true;
  for (const n of tensorNames) if (tensorRole(n).kind === "head") return false;
  return true;
}
