// The model registry: HF `model_type` → architecture. The one barrel-like file allowed (STYLE §2).
import { NodeError } from "../errors.ts";
import { stageWantsTensor, type Architecture } from "./base.ts";
import { createDeepseek, deepseekTensorShapes, deepseekWantsTensor } from "./deepseek.ts";
import { createGemma2, gemma2TensorShapes, gemma2WantsTensor } from "./gemma2.ts";
import { createLlama, llamaTensorShapes } from "./llama.ts";
import { createPhi3, phi3TensorShapes } from "./phi3.ts";
import { createQwen2, qwen2TensorShapes } from "./qwen2.ts";
import { createQwen3, qwen3TensorShapes } from "./qwen3.ts";

const llama: Architecture = {
  create: (args, range, weights) => createLlama(args, range, weights),
  tensorShapes: (args) => llamaTensorShapes(args),
  wantsTensor: stageWantsTensor,
};

const deepseek: Architecture = {
  create: (args, range, weights) => createDeepseek(args, range, weights),
  tensorShapes: deepseekTensorShapes,
  wantsTensor: deepseekWantsTensor,
};

const REGISTRY: Record<string, Architecture> = {
  llama,
  mistral: llama,
  qwen2: { create: createQwen2, tensorShapes: qwen2TensorShapes, wantsTensor: stageWantsTensor },
  qwen3: { create: createQwen3, tensorShapes: qwen3TensorShapes, wantsTensor: stageWantsTensor },
  phi3: { create: createPhi3, tensorShapes: phi3TensorShapes, wantsTensor: stageWantsTensor },
  gemma2: { create: createGemma2, tensorShapes: gemma2TensorShapes, wantsTensor: gemma2WantsTensor },
  deepseek_v2: deepseek,
  deepseek_v3: deepseek,
  kimi_k2: deepseek,
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
