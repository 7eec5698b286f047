// The MLX half of the architecture registry: one builder per model_type of ./spec/architectures.ts (the
// registry itself). `Record<ModelType, BuildStage>` makes a type without a builder a compile error.
// The one barrel-like file allowed (STYLE §2).
import type { BuildStage } from "./base.ts";
import { createDeepseek } from "./deepseek.ts";
import { createGemma2 } from "./gemma2.ts";
import { createLlama } from "./llama.ts";
import { createPhi3 } from "./phi3.ts";
import { createQwen2 } from "./qwen2.ts";
import { createQwen2Moe, createQwen3Moe } from "./qwen-moe.ts";
import { createQwen3 } from "./qwen3.ts";
import { architectureSpec, type ArchitectureSpec, type ModelType } from "./spec/architectures.ts";

const BUILDERS: Record<ModelType, BuildStage> = {
  llama: (args, range, weights) => createLlama(args, range, weights),
  mistral: (args, range, weights) => createLlama(args, range, weights),
  qwen2: createQwen2,
  qwen3: createQwen3,
  phi3: createPhi3,
  gemma2: createGemma2,
  qwen3_moe: createQwen3Moe,
  qwen2_moe: createQwen2Moe,
  deepseek_v2: (args, range, weights) => createDeepseek(args, range, weights),
  deepseek_v3: (args, range, weights) => createDeepseek(args, range, weights),
  kimi_k2: (args, range, weights) => createDeepseek(args, range, weights),
};

/** Everything known about one model_type: the pure spec and its MLX builder. */
export interface Architecture extends ArchitectureSpec {
  create: BuildStage;
}

/** The architecture for a model_type. @throws E_MODEL_UNSUPPORTED naming it and the supported ones. */
export function getArchitecture(modelType: string): Architecture {
  const spec = architectureSpec(modelType);
  return { ...spec, create: BUILDERS[modelType as ModelType] };
}
