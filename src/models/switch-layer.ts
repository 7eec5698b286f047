// The Mixture-of-Experts feed-forward ("switch" layer): the MoE counterpart of the dense SwiGLU MLP,
// shared by every MoE family (qwen3_moe, qwen2_moe, DeepSeek). Each family routes with its own small
// function (./routing.ts) and hands this module the choice: expert ids and combine weights per token.
//
// Experts are stacked once at load into [E, out, in] per projection (src/engine/weights.ts), floats or
// packed quantized words. Two paths compute the same thing (mlx-notes §11 measured both):
// - per token × slot (decode, short inputs): blockSparseMM / blockSparseQMM pick each pair's expert
//   from the stack without copying it; nothing is read back into JS, so decode never syncs;
// - grouped by expert (prefill on CPU): the router's choice is read into JS, tokens are sorted by expert,
//   and each touched expert runs one matrix product over its tokens (on CPU, where blockSparseMM runs one
//   vector product per pair, 3-7x faster than pairs at 32 tokens and 12-16x at 128; bench/moe.ts).
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import { need, swiglu, type Weights } from "./base.ts";
import { expertStackPrefix } from "./spec/experts.ts";
import { quantParamsOf, type QuantizationArgs } from "./spec/quantization.ts";

/** One projection of every expert: weight [E, out, in] (floats) or packed [E, out, in·bits/32] + per-group scales/biases. */
export interface ExpertStack {
  weight: mx.array;
  quant?: { scales: mx.array; biases: mx.array; groupSize: number; bits: number };
}

/** The routed experts of one layer: a SwiGLU per expert, as three stacks. */
export interface SwitchGLU {
  numExperts: number;
  gate: ExpertStack;
  up: ExpertStack;
  down: ExpertStack;
}

/**
 * A router's choice for T tokens: `experts` [T, k] (uint32 or int32 ids in [0, E)) and `weights` [T, k]
 * (float, the factor each chosen expert's output is multiplied by before the k outputs are summed).
 */
export interface Routing {
  experts: mx.array;
  weights: mx.array;
}

export interface SwitchOptions {
  /**
   * Inputs of at least this many tokens are grouped by expert; shorter ones (decode) take the per-pair
   * path. Default 4 on CPU (bench/moe.ts: pairs and grouping cost the same at 1 token, grouping wins from
   * a few tokens on); Infinity on Metal, whose gather kernels need no grouping (not measured here).
   */
  groupMinTokens?: number;
  /** gate, up → hidden activation. Default SwiGLU: silu(gate) · up. */
  activation?: (gate: mx.array, up: mx.array) => mx.array;
}

const PROJECTIONS = ["gate_proj", "up_proj", "down_proj"] as const;

/**
 * The stacked experts under `mlpPrefix` (`${mlpPrefix}.switch_mlp.{gate,up,down}_proj.*`, as the loader
 * leaves them). @throws E_WEIGHTS when a stack is missing or does not hold `numExperts` experts.
 */
export function loadSwitchGLU(w: Weights, mlpPrefix: string, numExperts: number, q?: QuantizationArgs): SwitchGLU {
  const [gate, up, down] = PROJECTIONS.map((p) => loadStack(w, expertStackPrefix(mlpPrefix, p), numExperts, q)) as [
    ExpertStack,
    ExpertStack,
    ExpertStack,
  ];
  return { numExperts, gate, up, down };
}

/**
 * The layer's output for x [..., H] under `routing` (T = the product of x's leading axes): Σₖ weightₖ ·
 * expertₖ(x), shaped like x. @throws E_DTYPE on CPU when an input or weight is not float32 (before any eval).
 */
export function switchGLU(layer: SwitchGLU, x: mx.array, routing: Routing, opts: SwitchOptions = {}): mx.array {
  const onMetal = mx.metal.isAvailable();
  if (!onMetal) guardCpuDtypes(layer, x, routing);
  const shape = x.shape;
  const H = shape[shape.length - 1]!;
  const x2 = x.reshape([-1, H]);
  const T = x2.shape[0]!;
  const k = routing.experts.shape[routing.experts.ndim - 1]!;
  const experts = routing.experts.reshape(T, k);
  const weights = routing.weights.reshape(T, k).astype(x.dtype);
  const activation = opts.activation ?? swiglu;
  const groupMin = opts.groupMinTokens ?? (onMetal ? Number.POSITIVE_INFINITY : 4);
  const y =
    T >= groupMin ? grouped(layer, x2, experts, weights, activation) : perPair(layer, x2, experts, weights, activation);
  return y.reshape(shape);
}

// --- internal ---

function loadStack(w: Weights, prefix: string, numExperts: number, q?: QuantizationArgs): ExpertStack {
  const weight = need(w, `${prefix}.weight`);
  if (weight.ndim !== 3 || weight.shape[0] !== numExperts)
    throw new NodeError(
      "E_WEIGHTS",
      `${prefix}.weight is [${weight.shape.join(", ")}], expected ${numExperts} stacked experts [E, out, in]`,
    );
  const scales = w.get(`${prefix}.scales`);
  if (!scales) return { weight };
  const { groupSize, bits } = quantParamsOf(q, prefix, weight.shape, scales.shape);
  return { weight, quant: { scales, biases: need(w, `${prefix}.biases`), groupSize, bits } };
}

/** A float32 matmul or an eval-time abort: refuse anything else while the graph is still being built. */
function guardCpuDtypes(layer: SwitchGLU, x: mx.array, routing: Routing): void {
  const bad = (what: string, d: mx.Dtype) => {
    throw new NodeError("E_DTYPE", `switch layer: ${what} is ${String(d)} but the CPU backend runs float32 only`);
  };
  if (x.dtype !== mx.float32) bad("the input", x.dtype);
  if (routing.weights.dtype !== mx.float32) bad("the routing weights", routing.weights.dtype);
  for (const p of ["gate", "up", "down"] as const) {
    const s = layer[p];
    if (s.quant) {
      if (s.weight.dtype !== mx.uint32) bad(`the packed ${p} stack`, s.weight.dtype);
      if (s.quant.scales.dtype !== mx.float32) bad(`the ${p} scales`, s.quant.scales.dtype);
      if (s.quant.biases.dtype !== mx.float32) bad(`the ${p} biases`, s.quant.biases.dtype);
    } else if (s.weight.dtype !== mx.float32) bad(`the ${p} stack`, s.weight.dtype);
  }
}

/** x [..., M, in] through the expert each batch element's index picks: [...idx, M, out]. */
function gatherProject(x: mx.array, s: ExpertStack, indices: mx.array): mx.array {
  if (!s.quant) return mx.blockSparseMM(x, mx.swapaxes(s.weight, -1, -2), undefined, indices);
  const q = s.quant;
  return blockSparseQMM(x, s.weight, q.scales, q.biases, undefined, indices, true, q.groupSize, q.bits);
}

/** Decode path: every token × slot pair through its expert, straight from the stacks. */
function perPair(
  layer: SwitchGLU,
  x2: mx.array,
  experts: mx.array,
  weights: mx.array,
  activation: (g: mx.array, u: mx.array) => mx.array,
): mx.array {
  const xe = mx.expandDims(x2, [-2, -3]); // [T, 1, 1, H]: one row per pair once broadcast against [T, k]
  const h = activation(gatherProject(xe, layer.gate, experts), gatherProject(xe, layer.up, experts));
  const out = gatherProject(h, layer.down, experts).squeeze(-2); // [T, k, H]
  return mx.sum(mx.multiply(out, mx.expandDims(weights, -1)), -2);
}

/** Prefill path: tokens sorted by expert, one matrix product per touched expert, outputs put back in order. */
function grouped(
  layer: SwitchGLU,
  x2: mx.array,
  experts: mx.array,
  weights: mx.array,
  activation: (g: mx.array, u: mx.array) => mx.array,
): mx.array {
  const [T, k] = experts.shape as [number, number];
  const H = x2.shape[1]!;
  const ids = experts.astype(mx.int32).reshape([-1]).tolist() as number[];
  const groups = groupByExpert(ids, layer.numExperts);
  const pairTokens = new Int32Array(ids.length);
  const position = new Int32Array(ids.length);
  let at = 0;
  for (const [, pairs] of groups)
    for (const p of pairs) {
      pairTokens[at] = Math.floor(p / k);
      position[p] = at++;
    }
  const xs = mx.take(x2, mx.array(Array.from(pairTokens), mx.int32), 0); // [T·k, H] in expert order
  const parts: mx.array[] = [];
  let offset = 0;
  for (const [e, pairs] of groups) {
    const xe = xs.index(mx.Slice(offset, offset + pairs.length));
    offset += pairs.length;
    const h = activation(expertMatmul(xe, layer.gate, e), expertMatmul(xe, layer.up, e));
    parts.push(expertMatmul(h, layer.down, e));
  }
  const ys = parts.length === 1 ? parts[0]! : mx.concatenate(parts, 0);
  const perPairOut = mx.take(ys, mx.array(Array.from(position), mx.int32), 0).reshape(T, k, H);
  return mx.sum(mx.multiply(perPairOut, mx.expandDims(weights, -1)), 1);
}

/** Pair indices (t·k + slot) of each expert that got any, in expert order. */
function groupByExpert(ids: number[], numExperts: number): [number, number[]][] {
  const byExpert = new Map<number, number[]>();
  ids.forEach((e, p) => {
    if (!Number.isInteger(e) || e < 0 || e >= numExperts)
      throw new NodeError("E_INTERNAL", `router chose expert ${e}, outside [0, ${numExperts})`);
    const list = byExpert.get(e);
    if (list) list.push(p);
    else byExpert.set(e, [p]);
  });
  return [...byExpert.entries()].sort((a, b) => a[0] - b[0]);
}

/**
 * xe [n, in] through expert `e` of a stack: a float stack is multiplied in place (blockSparseMM with one
 * index, no copy of the expert); a packed one is dequantized for this expert only (mlx-notes §11: 4x
 * faster than blockSparseQMM for prefill-sized inputs).
 */
function expertMatmul(xe: mx.array, s: ExpertStack, e: number): mx.array {
  if (!s.quant) {
    const idx = mx.array([e], mx.uint32);
    return mx.blockSparseMM(mx.expandDims(xe, 0), mx.swapaxes(s.weight, -1, -2), undefined, idx).squeeze(0);
  }
  const q = s.quant;
  const w = mx.dequantize(s.weight.index(e), q.scales.index(e), q.biases.index(e), q.groupSize, q.bits);
  return mx.matmul(xe, w.T);
}

type BlockSparseQMM = (
  x: mx.array,
  w: mx.array,
  scales: mx.array,
  biases: mx.array,
  lhsIndices: mx.array | undefined,
  rhsIndices: mx.array,
  transpose: boolean,
  groupSize: number,
  bits: number,
) => mx.array;

/** gather_qmm: present in node-mlx 0.0.7 at run time, missing from its typings (mlx-notes §11). */
const blockSparseQMM = (mx as unknown as { blockSparseQMM: BlockSparseQMM }).blockSparseQMM;
