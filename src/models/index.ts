// The model registry: HF `model_type` → architecture. The one barrel-like file allowed (STYLE §2).
import { NodeError } from "../errors.ts";
import { stageWantsTensor, type Architecture } from "./base.ts";
import { createLlama, llamaTensorShapes } from "./llama.ts";

const llama: Architecture = {
  create: (args, range, weights) => createLlama(args, range, weights),
  tensorShapes: (args) => llamaTensorShapes(args),
  wantsTensor: stageWantsTensor,
};

const REGISTRY: Record<string, Architecture> = {
  llama,
  mistral: llama,
};

/** model_type values this build can run. */
export const SUPPORTED_MODEL_TYPES: readonly string[] = Object.keys(REGISTRY);

/** The architecture for a model_type. @throws E_MODEL_UNSUPPORTED naming it and the supported ones. */
export function getArchitecture(modelType: string): Architecture {
  const arch = Object.hasOwn(REGISTRY, modelType) ? REGISTRY[modelType] : undefined;
  if (!arch) {
    throw new NodeError(
      "E_MODEL_UNSUPPORTED",
      `model_type "${modelType}" is not supported (supported: ${SUPPORTED_MODEL_TYPES.join(", ")})`,
    );
  }
  return arch;
}
