// Which config.json `model_type`s this build can run, known without loading MLX, so a node refuses a model
// before downloading it. test/models/registry.test.ts keeps this list equal to src/models' registry.
import { NodeError } from "../errors.ts";

export const RUNNABLE_ARCHITECTURES: readonly string[] = [
  "deepseek_v2",
  "deepseek_v3",
  "gemma2",
  "kimi_k2",
  "llama",
  "mistral",
  "phi3",
  "qwen2",
  "qwen3",
];

/** @throws NodeError E_MODEL_UNSUPPORTED naming the model, its architecture and the ones that run. */
export function assertRunnable(modelId: string, arch: string): void {
  if (RUNNABLE_ARCHITECTURES.includes(arch)) return;
  throw new NodeError(
    "E_MODEL_UNSUPPORTED",
    `${modelId} is a "${arch}" model, which this build cannot run (supported: ${RUNNABLE_ARCHITECTURES.join(", ")})`,
  );
}
