// Shard-aware weight loading: reads only the tensors a stage wants from model*.safetensors (via
// model.safetensors.index.json or the files' headers), upcasts/dequantizes to float32 on CPU, guards dtypes.
import { core as mx } from "@frost-beta/mlx";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Weights } from "../models/base.ts";
import { expertSlot, isExpertTensor } from "../models/spec/experts.ts";
import { quantParamsOf, type QuantizationArgs } from "../models/spec/quantization.ts";
import { releaseMemory } from "./memory.ts";
import { dequantizeRows } from "./quantize.ts";
import { readSafetensorsHeader } from "./tensor-bytes.ts";

const log = logger("engine");
/** Evaluate about this many bytes between event-loop turns so transient copies are freed as we go. */
const BATCH_BYTES = 256 * 1024 * 1024;
const NATIVE_QUANT_BITS = new Set([2, 4, 8]);

export interface LoadWeightsOptions {
  /** Keep checkpoint dtypes and packed quantized weights (Metal). Default: true only when Metal is available. */
  native?: boolean;
  quantization?: QuantizationArgs;
  /** CPU only: keep 2/4/8-bit routed experts packed (default) or dequantize them to float32 like the rest. */
  cpuExperts?: CpuExperts;
  onProgress?: (fraction: number) => void;
}

/** How a CPU node holds quantized routed experts: packed (blockSparseQMM, ~1/6 the memory) or float32. */
export type CpuExperts = "packed" | "float32";

export interface LoadedWeights {
  weights: Weights;
  /** Checkpoint tensor names actually read (tests assert a stage reads only its own). */
  tensorsRead: string[];
  /** Safetensors files opened. */
  files: string[];
}

/** Tensor name → file name for a checkpoint directory. @throws E_WEIGHTS when there is no safetensors file. */
export function checkpointIndex(modelDir: string): Map<string, string> {
  const indexPath = join(modelDir, "model.safetensors.index.json");
  if (existsSync(indexPath)) {
    const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map?: Record<string, string> };
    if (!index.weight_map) throw new NodeError("E_WEIGHTS", `${indexPath}: no weight_map`);
    return new Map(Object.entries(index.weight_map));
  }
  const files = readdirSync(modelDir)
    .filter((f) => /^(model|weights?).*\.safetensors$/.test(f))
    .sort();
  if (files.length === 0) throw new NodeError("E_WEIGHTS", `${modelDir}: no model*.safetensors file`);
  const map = new Map<string, string>();
  for (const f of files)
    for (const name of Object.keys(readSafetensorsHeader(join(modelDir, f)).entries)) map.set(name, f);
  return map;
}

/**
 * Loads the tensors `wants` selects. On CPU every float tensor becomes float32 and quantized linears are
 * dequantized to float32 (see src/models/README.md for why). @throws E_WEIGHTS (missing/bad file), E_DTYPE.
 */
export async function loadShardWeights(
  modelDir: string,
  wants: (name: string) => boolean,
  opts: LoadWeightsOptions = {},
): Promise<LoadedWeights> {
  const native = opts.native ?? mx.metal.isAvailable();
  const index = checkpointIndex(modelDir);
  const names = [...index.keys()].filter(wants).sort();
  if (names.length === 0) throw new NodeError("E_WEIGHTS", `${modelDir}: no tensor of this stage in the checkpoint`);
  const byFile = new Map<string, string[]>();
  for (const n of names) byFile.set(index.get(n)!, [...(byFile.get(index.get(n)!) ?? []), n]);

  const raw = new Map<string, mx.array>();
  for (const [file, fileNames] of byFile) {
    const path = join(modelDir, file);
    if (!existsSync(path)) throw new NodeError("E_WEIGHTS", `${path}: missing (it holds ${fileNames[0]})`);
    const all = mx.load(path) as unknown as Record<string, mx.array>;
    for (const n of fileNames) {
      const t = all[n];
      if (!t) throw new NodeError("E_WEIGHTS", `${path}: has no tensor ${n} although the index says so`);
      raw.set(n, t);
    }
  }

  const weights: Weights = new Map();
  const pending: mx.array[] = [];
  let pendingBytes = 0;
  let doneBytes = 0;
  const totalBytes = names.reduce((s, n) => s + byteSize(raw.get(n)!), 0);
  const flush = async () => {
    if (pending.length === 0) return;
    mx.eval(...pending);
    doneBytes += pendingBytes;
    pending.length = 0;
    pendingBytes = 0;
    opts.onProgress?.(Math.min(1, doneBytes / Math.max(1, totalBytes)));
    await releaseMemory();
  };
  const keep = async (name: string, t: mx.array, sourceBytes: number) => {
    weights.set(name, t);
    pending.push(t);
    pendingBytes += sourceBytes;
    if (pendingBytes >= BATCH_BYTES) await flush();
  };
  const stacks = createExpertStacker(names, keep);
  const put = (name: string, t: mx.array, sourceBytes: number) =>
    expertSlot(name) ? stacks.add(name, t, sourceBytes) : keep(name, t, sourceBytes);

  const done = new Set<string>();
  for (const name of names) {
    const t = raw.get(name)!;
    const prefix = name.replace(/\.(weight|scales|biases|bias)$/, "");
    const quantized = raw.has(`${prefix}.scales`) && /\.(weight|scales|biases)$/.test(name);
    if (quantized && done.has(prefix)) continue;
    if (quantized) {
      done.add(prefix);
      const w = raw.get(`${prefix}.weight`);
      const scales = raw.get(`${prefix}.scales`)!;
      const biases = raw.get(`${prefix}.biases`);
      if (!w || !biases) throw new NodeError("E_WEIGHTS", `${prefix}: quantized but its weight or biases are missing`);
      const { groupSize, bits } = quantParamsOf(opts.quantization, prefix, w.shape, scales.shape);
      const bytes = byteSize(w) + byteSize(scales) + byteSize(biases);
      if (keepsPacked(prefix, bits, native, opts.cpuExperts ?? "packed")) {
        // Metal runs the checkpoint as it is; on CPU, packed experts need float32 scales for their kernels.
        const cast = (a: mx.array) => (native ? a : a.astype(mx.float32));
        await put(`${prefix}.weight`, w, byteSize(w));
        await put(`${prefix}.scales`, cast(scales), byteSize(scales));
        await put(`${prefix}.biases`, cast(biases), byteSize(biases));
        continue;
      }
      const full = await dequantizeAny(w, scales, biases, groupSize, bits);
      await put(`${prefix}.weight`, native ? full.astype(scales.dtype) : full, bytes);
      continue;
    }
    if (!native && isFloat(t.dtype) && t.dtype !== mx.float32) await put(name, t.astype(mx.float32), byteSize(t));
    else await put(name, t, byteSize(t));
  }
  stacks.finish();
  await flush();
  if (!native) guardCpuDtypes(weights);
  log.debug(`read ${names.length} tensors from ${byFile.size} file(s) in ${modelDir}`);
  return { weights, tensorsRead: names, files: [...byFile.keys()] };
}

/**
 * Whether a quantized tensor stays packed. Metal: every 2/4/8-bit tensor (native kernels). CPU: only
 * routed experts at 2/4/8 bits unless `cpuExperts` is "float32"; everything else is dequantized once,
 * at load (src/models/README.md has the measurements behind this rule).
 */
export function keepsPacked(prefix: string, bits: number, native: boolean, cpuExperts: CpuExperts): boolean {
  if (!NATIVE_QUANT_BITS.has(bits)) return false;
  return native || (cpuExperts === "packed" && isExpertTensor(prefix));
}

/**
 * On CPU only float32 reaches a matmul, and packed uint32 words that have their float32 scales (kept
 * experts): anything else would abort the process inside eval. @throws E_DTYPE
 */
export function guardCpuDtypes(weights: Weights): void {
  for (const [name, t] of weights) {
    if (t.dtype === mx.float32) continue;
    const packed = t.dtype === mx.uint32 && name.endsWith(".weight") && weights.has(name.replace(/weight$/, "scales"));
    if (!packed) throw new NodeError("E_DTYPE", `${name} is ${String(t.dtype)} but the CPU backend runs float32 only`);
  }
}

/** Dequantizes a 2-D tensor or a stack of experts [E, out, in·bits/32] (row by row of the flattened stack). */
async function dequantizeAny(
  w: mx.array,
  scales: mx.array,
  biases: mx.array,
  groupSize: number,
  bits: number,
): Promise<mx.array> {
  if (w.ndim <= 2) return dequantizeRows(w, scales, biases, groupSize, bits);
  const lead = w.shape.slice(0, -1);
  const flat = (a: mx.array) => a.reshape([-1, a.shape[a.ndim - 1]!]);
  const full = await dequantizeRows(flat(w), flat(scales), flat(biases), groupSize, bits);
  return full.reshape([...lead, full.shape[1]!]);
}

/**
 * Collects per-expert tensors (`….experts.{e}.{proj}.{weight|scales|biases}`) and emits each stack
 * (`….switch_mlp.{proj}.*`, [E, …]) once all its experts are in. @throws E_WEIGHTS when experts are missing.
 */
function createExpertStacker(
  names: readonly string[],
  emit: (name: string, t: mx.array, sourceBytes: number) => Promise<void>,
) {
  const expected = new Map<string, number>();
  for (const n of names) {
    const slot = expertSlot(n.replace(/\.(scales|biases)$/, ".weight"));
    if (slot) expected.set(slot.stacked, Math.max(expected.get(slot.stacked) ?? 0, slot.expert + 1));
  }
  const parts = new Map<string, { arrays: (mx.array | undefined)[]; bytes: number; count: number }>();
  return {
    async add(name: string, t: mx.array, sourceBytes: number): Promise<void> {
      const slot = expertSlot(name)!;
      const size = expected.get(slot.stacked.replace(/\.(scales|biases)$/, ".weight")) ?? slot.expert + 1;
      const entry = parts.get(slot.stacked) ?? { arrays: new Array(size).fill(undefined), bytes: 0, count: 0 };
      parts.set(slot.stacked, entry);
      if (!entry.arrays[slot.expert]) entry.count++;
      entry.arrays[slot.expert] = t;
      entry.bytes += sourceBytes;
      if (entry.count < size) return;
      parts.delete(slot.stacked);
      await emit(slot.stacked, mx.stack(entry.arrays as mx.array[], 0), entry.bytes);
    },
    finish(): void {
      for (const [stacked, entry] of parts) {
        const missing = entry.arrays.flatMap((a, e) => (a ? [] : [e]));
        throw new NodeError(
          "E_WEIGHTS",
          `${stacked}: the checkpoint lacks expert(s) ${missing.slice(0, 8).join(", ")} of ${entry.arrays.length}`,
        );
      }
    },
  };
}

function isFloat(d: mx.Dtype): boolean {
  return d === mx.float32 || d === mx.float16 || d === mx.bfloat16;
}

function byteSize(t: mx.array): number {
  return t.size * t.itemsize;
}
