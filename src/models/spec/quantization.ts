// mlx-community affine quantization as config.json states it: a global block (group_size, bits) whose other
// keys are module paths with their own settings ({group_size, bits}, e.g. routers at 8 bits while experts are
// at 4) or `false` (left in floats). Pure: the loaders ask it what one tensor prefix was quantized with.
// Also the repo-level label (`Quantization`: 4bit, bf16, ...) the catalog and placement size models by.
import { NodeError } from "../../errors.ts";

/** "3bit" … "8bit" for MLX affine quantization; "bf16"/"fp16"/"fp32" for unquantized checkpoints. */
export type Quantization = `${number}bit` | "bf16" | "fp16" | "fp32";

/** Stored bits per weight, counting MLX's per-group (64) float16 scale and bias for quantized weights. */
export function bitsPerWeight(q: Quantization): number {
  if (q === "fp32") return 32;
  if (q === "bf16" || q === "fp16") return 16;
  return Number.parseInt(q, 10) + 0.5;
}

export interface QuantParams {
  groupSize: number;
  bits: number;
}

/** The global settings and per-module-path overrides (false = not quantized). */
export interface QuantizationArgs extends QuantParams {
  overrides: Record<string, QuantParams | false>;
}

type Json = Record<string, unknown>;

const int = (o: Json, key: string, fallback: number): number => {
  const v = o[key];
  if (v === undefined) return fallback;
  if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
  throw new NodeError("E_WEIGHTS", `config.json quantization: "${key}" must be a positive integer, got ${String(v)}`);
};

/** Parses config.json's `quantization` (or `quantization_config`) block; undefined when there is none. */
export function parseQuantizationBlock(raw: unknown): QuantizationArgs | undefined {
  if (raw === null || raw === undefined || typeof raw !== "object") return undefined;
  const q = raw as Json;
  // Only mlx-community's affine blocks are read here; an original FP8 or compressed-tensors checkpoint
  // would otherwise be misread as 4-bit groups of 64.
  if (typeof q.quant_method === "string") {
    throw new NodeError(
      "E_MODEL_UNSUPPORTED",
      `config.json: quantization_config.quant_method "${q.quant_method}" is not supported: this build loads float ` +
        `checkpoints and mlx-community's affine 2-8 bit conversions (for DeepSeek V3, e.g. mlx-community/DeepSeek-V3-4bit)`,
    );
  }
  if (typeof q.mode === "string" && q.mode !== "affine")
    throw new NodeError(
      "E_MODEL_UNSUPPORTED",
      `config.json: quantization mode "${q.mode}" is not supported (affine only)`,
    );
  const overrides: QuantizationArgs["overrides"] = {};
  for (const [key, v] of Object.entries(q)) {
    if (v === false) overrides[key] = false;
    else if (v && typeof v === "object")
      overrides[key] = { groupSize: int(v as Json, "group_size", 64), bits: int(v as Json, "bits", 4) };
  }
  return { groupSize: int(q, "group_size", 64), bits: int(q, "bits", 4), overrides };
}

/** The group size a module path was quantized with: its override, else the global one (64 without a block). */
export function groupSizeFor(q: QuantizationArgs | undefined, prefix: string): number {
  const override = q?.overrides[prefix];
  return override ? override.groupSize : (q?.groupSize ?? 64);
}

/**
 * Settings of one quantized tensor from its stored shapes: the group size from config.json, the bits from
 * how many uint32 words hold a row (so a checkpoint whose override is missing still loads right).
 * @throws E_WEIGHTS when the packed width does not fit the group size.
 */
export function quantParamsOf(
  q: QuantizationArgs | undefined,
  prefix: string,
  packedShape: readonly number[],
  scalesShape: readonly number[],
): QuantParams {
  const groupSize = groupSizeFor(q, prefix);
  const inFeatures = scalesShape[scalesShape.length - 1]! * groupSize;
  const bits = (packedShape[packedShape.length - 1]! * 32) / inFeatures;
  if (!Number.isInteger(bits) || bits < 1 || bits > 8)
    throw new NodeError(
      "E_WEIGHTS",
      `${prefix}: packed width ${packedShape.join("x")} does not fit group size ${groupSize}`,
    );
  return { groupSize, bits };
}

/** Stored bits of one weight quantized with `p`, counting each group's float16 scale and bias. */
export function storedBitsPerWeight(p: QuantParams): number {
  return p.bits + 32 / p.groupSize;
}

/**
 * Refuses, from config.json alone, weights this build cannot load (an original FP8 or compressed-tensors
 * checkpoint), so a node says so before it downloads them. @throws E_MODEL_UNSUPPORTED naming the method
 */
export function assertLoadableQuantization(config: Json): void {
  parseQuantizationBlock(config.quantization ?? config.quantization_config);
}
