// YaRN rotary scaling as DeepSeek defines it (pure numbers, no MLX): the low frequencies are divided by
// `factor`, the high ones kept, a linear ramp between; two magnitude corrections (`mscale` on cos/sin,
// `mscale_all_dim` squared on the attention scale).
import type { RopeScaling } from "./spec/model-args.ts";

export type YarnScaling = Extract<RopeScaling, { kind: "yarn" }>;

/** 0.1·m·ln(scale) + 1, or 1 when the context is not stretched. */
export function yarnMscale(scale: number, m: number): number {
  return scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1;
}

/** The rotary dimension index whose wavelength makes `rotations` turns over `maxPositions`. */
function correctionDim(rotations: number, dims: number, base: number, maxPositions: number): number {
  return (dims * Math.log(maxPositions / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
}

/** Inverse frequencies [dims/2] for YaRN-scaled RoPE over `dims` rotary features. */
export function yarnInvFreq(s: YarnScaling, dims: number, base: number): number[] {
  const low = Math.max(Math.floor(correctionDim(s.betaFast, dims, base, s.originalMaxPositions)), 0);
  let high = Math.min(Math.ceil(correctionDim(s.betaSlow, dims, base, s.originalMaxPositions)), dims - 1);
  if (high === low) high += 0.001;
  const out: number[] = [];
  for (let i = 0; i < dims / 2; i++) {
    const extrapolated = 1 / base ** ((2 * i) / dims);
    const interpolated = extrapolated / s.factor;
    // keep = 1 below `low` (high frequencies, kept as trained), 0 above `high` (fully interpolated).
    const keep = 1 - Math.min(1, Math.max(0, (i - low) / (high - low)));
    out.push(interpolated * (1 - keep) + extrapolated * keep);
  }
  return out;
}

/** The factor cos and sin are multiplied by. */
export function yarnRopeMagnitude(s: YarnScaling): number {
  return yarnMscale(s.factor, s.mscale) / yarnMscale(s.factor, s.mscaleAllDim);
}

/** Multiplier of the softmax scale 1/sqrt(qk_head_dim): mscale(factor, mscale_all_dim)² when that is set. */
export function yarnAttentionFactor(s: YarnScaling): number {
  if (!s.mscaleAllDim) return 1;
  const m = yarnMscale(s.factor, s.mscaleAllDim);
  return m * m;
}
