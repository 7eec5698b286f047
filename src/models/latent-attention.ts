// DeepSeek's multi-head latent attention (MLA). Keys and values come from one small latent per token
// (kv_a_proj_with_mqa → RMSNorm), expanded per head by kv_b_proj; a rope key of qk_rope_head_dim is shared
// by all heads. The cache holds only [latent ‖ rope key] (kv_lora_rank + qk_rope_head_dim values per
// token; 576 in V3). Decode uses the absorbed form: the query's no-rope part is projected into the
// latent space, attention runs against the cached latent as one shared K/V head, and the result is
// projected out through the value half of kv_b_proj. Prefill expands keys and values (fewer FLOPs for
// many queries). Both read the same cache, so a request can switch form at any step.
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import { getLinear, linear, need, type Linear, type Weights } from "./base.ts";
import type { DeepseekArgs } from "./spec/deepseek-args.ts";
import type { ModelArgs } from "./spec/model-args.ts";
import type { QuantizationArgs } from "./spec/quantization.ts";
import type { KVCache } from "./kv-cache.ts";
import { yarnAttentionFactor, yarnInvFreq, yarnRopeMagnitude } from "./yarn.ts";

/** DeepSeek's own norms inside attention use this epsilon regardless of rms_norm_eps. */
const LATENT_NORM_EPS = 1e-6;

/** When to use the absorbed form: for single-token steps (default), always, or never (tests, benchmarks). */
export type AbsorbMode = "decode" | "always" | "never";

export interface LatentAttention {
  /** x [B, L, hidden] (already normalised) → [B, L, hidden]. */
  forward(x: mx.array, cache: KVCache, layer: number, mask: mx.array | undefined, absorb?: AbsorbMode): mx.array;
}

interface Projections {
  q?: Linear;
  qA?: Linear;
  qANorm?: mx.array;
  qB?: Linear;
  kvA: Linear;
  kvANorm: mx.array;
  /** kv_b_proj split per head: k_nope = latent·wkᵀ with wk [H, nope, lora]; v = latent·wvᵀ with wv [H, v, lora]. */
  wk: mx.array;
  wv: mx.array;
  o: Linear;
}

/** Builds layer `prefix` (…self_attn) from its weights. @throws E_WEIGHTS naming a missing tensor. */
export function createLatentAttention(args: ModelArgs, d: DeepseekArgs, w: Weights, prefix: string): LatentAttention {
  const quant = args.quantization;
  const H = args.numAttentionHeads;
  const { qkNopeHeadDim: nope, qkRopeHeadDim: ropeDims, vHeadDim: vDim, kvLoraRank: lora } = d;
  const qkDim = nope + ropeDims;
  const p: Projections = {
    kvA: getLinear(w, `${prefix}.kv_a_proj_with_mqa`, quant),
    kvANorm: need(w, `${prefix}.kv_a_layernorm.weight`),
    o: getLinear(w, `${prefix}.o_proj`, quant),
    ...splitKvB(w, prefix, H, nope, vDim, lora, quant),
  };
  if (d.qLoraRank === undefined) p.q = getLinear(w, `${prefix}.q_proj`, quant);
  else {
    p.qA = getLinear(w, `${prefix}.q_a_proj`, quant);
    p.qANorm = need(w, `${prefix}.q_a_layernorm.weight`);
    p.qB = getLinear(w, `${prefix}.q_b_proj`, quant);
  }
  const rope = makeDeepseekRope(args, ropeDims);
  const scale = qkDim ** -0.5 * (args.ropeScaling.kind === "yarn" ? yarnAttentionFactor(args.ropeScaling) : 1);
  const wkT = p.wk.swapaxes(-1, -2);
  const wvT = p.wv.swapaxes(-1, -2);
  const S = mx.Slice;

  return {
    forward(x, cache, layer, mask, absorb = "decode") {
      const [B, L] = x.shape as [number, number];
      const qFlat = p.q ? linear(p.q, x) : linear(p.qB!, mx.fast.rmsNorm(linear(p.qA!, x), p.qANorm!, LATENT_NORM_EPS));
      const q = qFlat.reshape(B, L, H, qkDim).transpose(0, 2, 1, 3);
      const qNope = q.index("...", S(0, nope));
      const offset = cache.offset(layer);
      const qPe = rope(q.index("...", S(nope, qkDim)), offset);
      const kv = linear(p.kvA, x);
      const latent = mx.fast.rmsNorm(kv.index("...", S(0, lora)), p.kvANorm, LATENT_NORM_EPS).reshape(B, 1, L, lora);
      const kPe = rope(kv.index("...", S(lora, lora + ropeDims)).reshape(B, 1, L, ropeDims), offset);
      const stored = cache.appendKeys(layer, mx.concatenate([latent, kPe], -1));
      const latentAll = stored.index("...", S(0, lora));
      let out: mx.array;
      if (absorb === "always" || (absorb === "decode" && L === 1)) {
        // One shared K/V head: keys [latent ‖ rope key] (576 wide in V3), values the latent itself. The heads
        // are folded into the query axis ([B, 1, H·L, ·]): SDPA broadcasting one K/V head to H query heads
        // ran 60x slower here (bench/deepseek.ts, README). The causal mask is repeated per head to match.
        const query = mx.concatenate([mx.matmul(qNope, p.wk), qPe], -1).reshape(B, 1, H * L, lora + ropeDims);
        const T = stored.shape[2]!;
        const folded = mask ? mx.broadcastTo(mask, [H, L, T]).reshape(H * L, T) : undefined;
        const attended = mx.fast.scaledDotProductAttention(query, stored, latentAll, scale, folded);
        out = mx.matmul(attended.reshape(B, H, L, lora), wvT);
      } else {
        const T = stored.shape[2]!;
        const kNope = mx.matmul(latentAll, wkT);
        const values = mx.matmul(latentAll, wvT);
        const kPeAll = mx.broadcastTo(stored.index("...", S(lora, lora + ropeDims)), [B, H, T, ropeDims]);
        const keys = mx.concatenate([kNope, kPeAll], -1);
        out = mx.fast.scaledDotProductAttention(mx.concatenate([qNope, qPe], -1), keys, values, scale, mask);
      }
      return linear(p.o, out.transpose(0, 2, 1, 3).reshape(B, L, H * vDim));
    },
  };
}

/** kv_b_proj [H·(nope+v), lora] (HF) or mlx-lm's embed_q [H, lora, nope] + unembed_out [H, v, lora], as float wk/wv. */
function splitKvB(
  w: Weights,
  prefix: string,
  H: number,
  nope: number,
  vDim: number,
  lora: number,
  quant: QuantizationArgs | undefined,
): { wk: mx.array; wv: mx.array } {
  if (w.has(`${prefix}.embed_q.weight`)) {
    const wk = denseWeight(getLinear(w, `${prefix}.embed_q`, quant)).swapaxes(-1, -2);
    const wv = denseWeight(getLinear(w, `${prefix}.unembed_out`, quant));
    return { wk, wv };
  }
  const full = denseWeight(getLinear(w, `${prefix}.kv_b_proj`, quant));
  if (full.shape[0] !== H * (nope + vDim) || full.shape[1] !== lora)
    throw new NodeError(
      "E_WEIGHTS",
      `${prefix}.kv_b_proj is ${full.shape.join("x")}, expected ${H * (nope + vDim)}x${lora} from config.json`,
    );
  const perHead = full.reshape(H, nope + vDim, lora);
  return {
    wk: perHead.index(mx.Slice(), mx.Slice(0, nope)),
    wv: perHead.index(mx.Slice(), mx.Slice(nope, nope + vDim)),
  };
}

/** The float matrix of a linear; a packed one (Metal keeps them) is dequantized once here, since it is reshaped per head. */
function denseWeight(l: Linear): mx.array {
  if (!l.quant) return l.weight;
  const q = l.quant;
  return mx.dequantize(l.weight, q.scales, q.biases, q.groupSize, q.bits).astype(q.scales.dtype);
}

/**
 * DeepSeek's RoPE: pairs (2i, 2i+1) rotate together (the "interleaved"/traditional layout) over the rope
 * dims only; with YaRN the frequencies and the cos/sin magnitude are rescaled, which fast.rope cannot take.
 */
export function makeDeepseekRope(args: ModelArgs, dims: number): (x: mx.array, offset: number) => mx.array {
  const s = args.ropeScaling;
  if (s.kind === "none") return (x, offset) => mx.fast.rope(x, dims, true, args.ropeTheta, 1, offset);
  if (s.kind !== "yarn")
    throw new NodeError("E_MODEL_UNSUPPORTED", `rope_scaling "${s.kind}" with latent attention (supported: yarn)`);
  const invFreq = mx.array(yarnInvFreq(s, dims, args.ropeTheta), mx.float32).reshape(1, dims / 2);
  const magnitude = yarnRopeMagnitude(s);
  return (x, offset) => interleavedRope(x, invFreq, offset, magnitude);
}

/** Rotates each pair (x[2i], x[2i+1]) of the last axis by position·invFreq[i]; x [..., L, dims]. */
function interleavedRope(x: mx.array, invFreq: mx.array, offset: number, magnitude: number): mx.array {
  const L = x.shape[x.ndim - 2]!;
  const D = x.shape[x.ndim - 1]!;
  const angles = mx.multiply(mx.arange(offset, offset + L, 1, mx.float32).reshape(L, 1), invFreq);
  const cos = mx.expandDims(mx.multiply(mx.cos(angles), magnitude), [-1]).astype(x.dtype);
  const sin = mx.expandDims(mx.multiply(mx.sin(angles), magnitude), [-1]).astype(x.dtype);
  const pairs = x.reshape([...x.shape.slice(0, -1), D / 2, 2]);
  const even = pairs.index("...", mx.Slice(0, 1));
  const odd = pairs.index("...", mx.Slice(1, 2));
  const rotated = mx.concatenate(
    [mx.subtract(mx.multiply(even, cos), mx.multiply(odd, sin)), mx.add(mx.multiply(even, sin), mx.multiply(odd, cos))],
    -1,
  );
  return rotated.reshape(x.shape);
}
