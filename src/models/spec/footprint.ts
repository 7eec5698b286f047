// How much memory a model takes where it runs, from what is known before its weights are downloaded: the
// stored size (catalog, or counted from config.json) and the share of it that is routed experts. Every
// expert counts (a stage holds all experts of its layers, not only the active ones). Pure.
import { architectureSpec } from "./architectures.ts";
import { isExpertTensor } from "./experts.ts";
import type { ModelArgs } from "./model-args.ts";
import { bitsPerWeight, groupSizeFor, storedBitsPerWeight, type Quantization } from "./quantization.ts";

/** Parameters of the whole model, split into routed experts and everything else. */
export function parameterCounts(args: ModelArgs): { experts: number; other: number } {
  let experts = 0;
  let other = 0;
  for (const [name, shape] of Object.entries(architectureSpec(args.modelType).tensorShapes(args))) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (isExpertTensor(name)) experts += n;
    else other += n;
  }
  return { experts, other };
}

/**
 * Bytes of the checkpoint's weights as stored: quantized matrices at their (per-path) bits, the rest at
 * `floatBits` (16 for bf16/f16 checkpoints, as mlx-community ships them; 32 for float32 ones).
 */
export function storedWeightBytes(args: ModelArgs, floatBits = 16): number {
  const q = args.quantization;
  let bits = 0;
  for (const [name, shape] of Object.entries(architectureSpec(args.modelType).tensorShapes(args))) {
    const n = shape.reduce((a, b) => a * b, 1);
    const prefix = name.replace(/\.weight$/, "");
    const override = q?.overrides[prefix];
    const quantized = q !== undefined && shape.length >= 2 && name.endsWith(".weight") && override !== false;
    const p = override ? override : { bits: q?.bits ?? 16, groupSize: groupSizeFor(q, prefix) };
    bits += n * (quantized ? storedBitsPerWeight(p) : floatBits);
  }
  return Math.ceil(bits / 8);
}

/** Share of the parameters that are routed experts (0 for a dense model). */
export function expertShare(args: ModelArgs): number {
  const { experts, other } = parameterCounts(args);
  return experts + other > 0 ? experts / (experts + other) : 0;
}

const PACKED_ON_CPU = new Set(["2bit", "4bit", "8bit"]);

/**
 * Bytes a CPU node holds per stored byte (src/models/README.md): every tensor becomes float32, except
 * 2/4/8-bit routed experts, which stay packed with float32 scales and biases (1 bit per weight at group
 * size 64). Metal nodes hold the checkpoint as stored (factor 1).
 */
export function cpuBytesPerStoredByte(quantization: Quantization, share = 0): number {
  const stored = bitsPerWeight(quantization);
  const dense = 32 / stored;
  if (!PACKED_ON_CPU.has(quantization) || share <= 0) return dense;
  const packed = (Number.parseInt(quantization, 10) + 1) / stored;
  return share * packed + (1 - share) * dense;
}
