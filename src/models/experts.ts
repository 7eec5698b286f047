// Routed experts stacked per layer ([E, out, in] per projection, mlx-community's switch_mlp layout) and
// applied to the experts each token picked: one blockSparseMM per projection over token × slot (MLX's
// gather_mm; mlx-notes §11), no weights gathered with take, no sync to JS.
import { core as mx } from "@frost-beta/mlx";
import { need, swiglu, type Weights } from "./base.ts";
import type { QuantizationArgs } from "./spec/quantization.ts";

export interface Experts {
  /** x [N, H], indices [N, k] (uint32), weights [N, k] → Σ_k weight·expert_k(x): [N, H]. */
  apply(x: mx.array, indices: mx.array, weights: mx.array): mx.array;
}

/** Loads `${prefix}.switch_mlp.{gate,up,down}_proj` (already float on CPU: the loader dequantizes). */
export function createExperts(w: Weights, prefix: string, _nExperts: number, _q?: QuantizationArgs): Experts {
  const gateT = need(w, `${prefix}.switch_mlp.gate_proj.weight`).swapaxes(-1, -2);
  const upT = need(w, `${prefix}.switch_mlp.up_proj.weight`).swapaxes(-1, -2);
  const downT = need(w, `${prefix}.switch_mlp.down_proj.weight`).swapaxes(-1, -2);
  return {
    apply(x, indices, weights) {
      const [N, H] = x.shape as [number, number];
      const xe = x.reshape(N, 1, 1, H);
      const gate = mx.blockSparseMM(xe, gateT, undefined, indices);
      const up = mx.blockSparseMM(xe, upT, undefined, indices);
      const out = mx.blockSparseMM(swiglu(gate, up), downT, undefined, indices); // [N, k, 1, H]
      return mx.sum(mx.multiply(out.squeeze(-2), mx.expandDims(weights, [-1])), 1);
    },
  };
}
