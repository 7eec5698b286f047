// MLX affine quantization in plain MLX ops, for any bit width (2/3/4/5/6/8): the binding's own kernels
// accept only 2/4/8 bits and wide matrices, while mlx-community ships 3- and 6-bit checkpoints too.
// Packing is a little-endian bit stream: value j of a row sits at bits [j*bits, (j+1)*bits).
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";
import { releaseMemory } from "./memory.ts";

const SUPPORTED_BITS = new Set([2, 3, 4, 5, 6, 8]);

/** Per 32-value block: which word each value starts in, its shift, and whether it spills into the next word. */
function layout(bits: number): { word: number[]; shift: number[]; spill: number[] } {
  if (!SUPPORTED_BITS.has(bits))
    throw new NodeError("E_WEIGHTS", `unsupported quantization: ${bits} bits (supported 2,3,4,5,6,8)`);
  const word: number[] = [];
  const shift: number[] = [];
  const spill: number[] = [];
  for (let j = 0; j < 32; j++) {
    const o = j * bits;
    word.push(o >> 5);
    shift.push(o & 31);
    spill.push((o & 31) + bits > 32 ? 1 : 0);
  }
  return { word, shift, spill };
}

const u32 = (v: number[]) => mx.array(v, mx.uint32);

/** Unpacks w [..., rows, in*bits/32] uint32 into float32 [..., rows, in] = q*scale + bias per group. */
export function dequantizeAffine(
  w: mx.array,
  scales: mx.array,
  biases: mx.array,
  groupSize: number,
  bits: number,
): mx.array {
  const { word, shift, spill } = layout(bits);
  const lead = w.shape.slice(0, -1);
  const packed = w.shape[w.ndim - 1]!;
  const blocks = packed / bits;
  const inFeatures = blocks * 32;
  if (!Number.isInteger(blocks) || scales.shape[scales.ndim - 1]! * groupSize !== inFeatures) {
    throw new NodeError(
      "E_WEIGHTS",
      `quantized shape mismatch: ${packed} packed words, ${scales.shape.join("x")} scales, group ${groupSize}, ${bits} bits`,
    );
  }
  const w3 = w.reshape([...lead, blocks, bits]);
  // The binding's shift ops do not broadcast a size-1 axis (silently): broadcast explicitly.
  const wordAt = (k: number, n = 1) => mx.broadcastTo(w3.index("...", mx.Slice(k, k + 1)), [...lead, blocks, n]);
  const mask = u32([(1 << bits) - 1]);
  // Values are grouped by the word they start in (one broadcast shift per word, no gather);
  // a value straddling two words is stitched from both.
  const pieces: mx.array[] = [];
  for (let j = 0; j < 32; ) {
    if (spill[j]) {
      const lo = mx.rightShift(wordAt(word[j]!), u32([shift[j]!]));
      const hi = mx.leftShift(wordAt(word[j]! + 1), u32([32 - shift[j]!]));
      pieces.push(mx.bitwiseAnd(mx.bitwiseOr(lo, hi), mask));
      j++;
      continue;
    }
    let end = j;
    while (end < 32 && !spill[end] && word[end] === word[j]) end++;
    pieces.push(mx.bitwiseAnd(mx.rightShift(wordAt(word[j]!, end - j), u32(shift.slice(j, end))), mask));
    j = end;
  }
  const q = (pieces.length === 1 ? pieces[0]! : mx.concatenate(pieces, -1)).astype(mx.float32);
  const groups = q.reshape([...lead, inFeatures / groupSize, groupSize]);
  const f32 = (a: mx.array) => mx.expandDims(a.astype(mx.float32), -1);
  return mx.add(mx.multiply(groups, f32(scales)), f32(biases)).reshape([...lead, inFeatures]);
}

/** Quantizes float w [rows, in] → [packed uint32, scales, biases] (float32), the format dequantizeAffine reads. */
export function quantizeAffine(w: mx.array, groupSize: number, bits: number): [mx.array, mx.array, mx.array] {
  const { word, shift, spill } = layout(bits);
  const [rows, inFeatures] = w.shape as [number, number];
  if (inFeatures % groupSize !== 0 || inFeatures % 32 !== 0) {
    throw new NodeError("E_WEIGHTS", `cannot quantize ${rows}x${inFeatures} with group size ${groupSize}`);
  }
  const levels = (1 << bits) - 1;
  const groups = w.astype(mx.float32).reshape(rows, inFeatures / groupSize, groupSize);
  const wmin = mx.min(groups, -1, true);
  const wmax = mx.max(groups, -1, true);
  const scale = mx.maximum(mx.divide(mx.subtract(wmax, wmin), levels), mx.array(1e-8, mx.float32));
  const q = mx.clip(mx.round(mx.divide(mx.subtract(groups, wmin), scale)), 0, levels).astype(mx.uint32);
  const blocks = q.reshape(rows, inFeatures / 32, 32);
  const lo = mx.leftShift(blocks, u32(shift));
  const hi = mx.multiply(mx.rightShift(blocks, u32(shift.map((s, j) => (spill[j] ? 32 - s : 0)))), u32(spill));
  const selLo: number[][] = [];
  const selHi: number[][] = [];
  for (let j = 0; j < 32; j++) {
    selLo.push(Array.from({ length: bits }, (_, k) => (word[j] === k ? 1 : 0)));
    selHi.push(Array.from({ length: bits }, (_, k) => (spill[j] && word[j]! + 1 === k ? 1 : 0)));
  }
  // Bit ranges never overlap, so summing the shifted parts is the same as OR-ing them.
  const words = mx.add(
    mx.sum(mx.multiply(mx.expandDims(lo, -1), mx.array(selLo, mx.uint32)), -2),
    mx.sum(mx.multiply(mx.expandDims(hi, -1), mx.array(selHi, mx.uint32)), -2),
  );
  return [words.reshape(rows, (inFeatures * bits) / 32), scale.squeeze(-1), wmin.squeeze(-1)];
}

/** Weights per evaluated chunk: small buffers come from MLX's cache, big ones cost fresh pages (~5x slower). */
const CHUNK_WEIGHTS = 1 << 17;

/** Bit widths the binding's own dequantize kernel handles (5-8x faster than the generic ops below). */
const NATIVE_BITS = new Set([2, 4, 8]);

/**
 * Load-time dequantization to float32: the native kernel for 2/4/8 bits, else dequantizeAffine over
 * row chunks, each evaluated at once.
 */
export async function dequantizeRows(
  w: mx.array,
  scales: mx.array,
  biases: mx.array,
  groupSize: number,
  bits: number,
): Promise<mx.array> {
  if (NATIVE_BITS.has(bits))
    return mx.dequantize(w, scales.astype(mx.float32), biases.astype(mx.float32), groupSize, bits);
  const rows = w.shape[0]!;
  const inFeatures = (w.shape[w.ndim - 1]! * 32) / bits;
  const per = Math.max(1, Math.floor(CHUNK_WEIGHTS / inFeatures));
  if (w.ndim !== 2 || rows <= per) return dequantizeAffine(w, scales, biases, groupSize, bits);
  const parts: mx.array[] = [];
  for (let r = 0; r < rows; r += per) {
    const S = mx.Slice(r, Math.min(rows, r + per));
    const part = dequantizeAffine(w.index(S), scales.index(S), biases.index(S), groupSize, bits);
    mx.eval(part);
    parts.push(part);
    // Each chunk's intermediates die only when the event loop turns (mlx-notes §4).
    if (parts.length % 16 === 0) await releaseMemory();
  }
  return mx.concatenate(parts, 0);
}

/** Quantizes a big matrix: the binding's kernel where it accepts the shape, else quantizeAffine per row chunk. */
export async function quantizeRows(
  w: mx.array,
  groupSize: number,
  bits: number,
): Promise<[mx.array, mx.array, mx.array]> {
  const [rows, inFeatures] = w.shape as [number, number];
  // The kernel refuses narrow matrices (e.g. 4 bits needs >= 256 features); its check runs before any eval.
  if (NATIVE_BITS.has(bits) && inFeatures >= 512)
    return mx.quantize(w, groupSize, bits) as unknown as [mx.array, mx.array, mx.array];
  const per = Math.max(1, Math.floor(CHUNK_WEIGHTS / inFeatures));
  if (rows <= per) return quantizeAffine(w, groupSize, bits);
  const parts: [mx.array[], mx.array[], mx.array[]] = [[], [], []];
  for (let r = 0; r < rows; r += per) {
    const chunk = quantizeAffine(w.index(mx.Slice(r, Math.min(rows, r + per))), groupSize, bits);
    mx.eval(...chunk);
    for (const [i, a] of chunk.entries()) parts[i as 0 | 1 | 2].push(a);
    if (parts[0].length % 16 === 0) await releaseMemory();
  }
  return parts.map((p) => mx.concatenate(p, 0)) as [mx.array, mx.array, mx.array];
}
