// The one registry of architectures this build runs: config.json `model_type` → what is known about it
// without MLX (tensor layout, head tying). src/models/index.ts maps the same keys to MLX builders, typed
// `Record<ModelType, …>`, so a type missing on either side is a compile error, not a test to keep equal.
import { NodeError } from "../../errors.ts";
import type { ModelArgs, ShardRange } from "./model-args.ts";
import { headIsTied, stageOwnsTensor } from "./ownership.ts";
import { deepseekTensorShapes } from "./deepseek-shapes.ts";
import {
  gemma2TensorShapes,
  llamaTensorShapes,
  moeTensorShapes,
  phi3TensorShapes,
  type TensorShapes,
} from "./tensor-shapes.ts";

export interface ArchitectureSpec {
  /** Full-model tensor names → shapes (unquantized, Hugging Face layout). */
  tensorShapes(args: ModelArgs): TensorShapes;
  /** The head is the embedding whatever config.json says (Gemma). */
  alwaysTied?: boolean;
  /** Routes tokens through experts (the catalog and placement say so; weights count every expert). */
  mixtureOfExperts?: boolean;
}

const llama: ArchitectureSpec = { tensorShapes: (a) => llamaTensorShapes(a) };

/** DeepSeek V2/V3 and Kimi K2 (the same network): latent attention, routed + shared experts. */
const deepseek: ArchitectureSpec = { tensorShapes: deepseekTensorShapes, mixtureOfExperts: true };

const SPECS = {
  llama,
  mistral: llama,
  qwen2: { tensorShapes: (a) => llamaTensorShapes(a, { qkvBias: true }) },
  qwen3: { tensorShapes: (a) => llamaTensorShapes(a, { qkNorm: true }) },
  phi3: { tensorShapes: phi3TensorShapes },
  gemma2: { tensorShapes: gemma2TensorShapes, alwaysTied: true },
  qwen3_moe: { tensorShapes: (a) => moeTensorShapes(a, { qkNorm: true }), mixtureOfExperts: true },
  qwen2_moe: { tensorShapes: (a) => moeTensorShapes(a, { qkvBias: true }), mixtureOfExperts: true },
  deepseek_v2: deepseek,
  deepseek_v3: deepseek,
  kimi_k2: deepseek,
} as const satisfies Record<string, ArchitectureSpec>;

/** A config.json model_type this build can run. */
export type ModelType = keyof typeof SPECS;

/** model_type values this build can run, sorted. */
export const SUPPORTED_MODEL_TYPES: readonly ModelType[] = (Object.keys(SPECS) as ModelType[]).sort();

export function isSupportedModelType(modelType: string): modelType is ModelType {
  return Object.hasOwn(SPECS, modelType);
}

/** What is known about a model_type. @throws E_MODEL_UNSUPPORTED naming it and the supported ones. */
export function architectureSpec(modelType: string): ArchitectureSpec {
  if (isSupportedModelType(modelType)) return SPECS[modelType];
  throw new NodeError(
    "E_MODEL_UNSUPPORTED",
    `model_type "${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`,
  );
}

/** Refuses a model by its architecture before anything is downloaded. @throws E_MODEL_UNSUPPORTED */
export function assertRunnable(modelId: string, arch: string): void {
  if (isSupportedModelType(arch)) return;
  throw new NodeError(
    "E_MODEL_UNSUPPORTED",
    `${modelId} is a "${arch}" model, which this build cannot run (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`,
  );
}

/** True when config.json's tie flag, the architecture or the checkpoint (no lm_head) makes the head the embedding. */
export function tiedHead(args: ModelArgs, tensorNames: Iterable<string>): boolean {
  const spec: ArchitectureSpec | undefined = isSupportedModelType(args.modelType) ? SPECS[args.modelType] : undefined;
  return headIsTied(args.tieWordEmbeddings || spec?.alwaysTied === true, tensorNames);
}

/** The loader's filter for one stage: the shared ownership rule with this model's head tying. */
export function stageTensorFilter(
  args: ModelArgs,
  range: ShardRange,
  tensorNames: Iterable<string>,
): (name: string) => boolean {
  return stageOwnsTensor({ ...range, tiedHead: tiedHead(args, tensorNames) });
}
