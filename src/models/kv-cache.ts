// Per-request KV cache of one stage: preallocated buffers per layer, written in place with indexPut_,
// grown in steps of `stepTokens` (one copy per step, never a per-token concatenate), dropped by free().
import { core as mx } from "@frost-beta/mlx";
import { NodeError } from "../errors.ts";

interface LayerBuffers {
  keys: mx.array;
  /** Absent for a keys-only cache (latent attention reads its values out of the keys). */
  values?: mx.array;
  /** Allocated positions (>= offset). */
  capacity: number;
}

export interface KVCacheSpec {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  /** Width of a cached value; 0 = keys only (latent attention). Default headDim. */
  valueDim?: number;
  /** Growth step in positions; default 256. */
  stepTokens?: number;
}

export class KVCache {
  private layers: (LayerBuffers | undefined)[];
  private offsets: number[];
  private readonly step: number;
  private freed = false;

  constructor(private readonly spec: KVCacheSpec) {
    this.layers = new Array<LayerBuffers | undefined>(spec.nLayers).fill(undefined);
    this.offsets = new Array<number>(spec.nLayers).fill(0);
    this.step = spec.stepTokens ?? 256;
  }

  /** Positions already stored for `layer` (the RoPE offset of the next token). */
  offset(layer: number): number {
    return this.offsets[layer] ?? 0;
  }

  /** Positions stored (same for every layer once a step finished). */
  get length(): number {
    return this.offsets[0] ?? 0;
  }

  /** Writes k/v [B, nKv, L, hd] at the current offset; returns views of everything stored so far. */
  update(layer: number, k: mx.array, v: mx.array): [mx.array, mx.array] {
    const [keys, values] = this.write(layer, k, v);
    return [keys, values!];
  }

  /**
   * One decode position: writes k/v [B, nKv, 1, hd] and returns the whole buffers with the additive mask [1,1,1,C]
   * that hides the positions not written yet (undefined when the buffer is full). Not views: a view of a buffer
   * that is still alive in JS when the next write comes (views are only freed by the GC) makes MLX copy the whole
   * buffer for that write instead of writing in place, which cost more than the rest of a decode step's attention.
   */
  updateDecode(layer: number, k: mx.array, v: mx.array): { keys: mx.array; values: mx.array; mask?: mx.array } {
    this.write(layer, k, v, false);
    const buf = this.layers[layer]!;
    const length = this.offsets[layer]!;
    return { keys: buf.keys, values: buf.values!, ...this.lengthMask(length, buf.capacity, k.dtype) };
  }

  /** Keys-only caches (valueDim 0): writes k [B, nKv, L, hd] at the current offset; returns everything stored. */
  appendKeys(layer: number, k: mx.array): mx.array {
    if (this.spec.valueDim !== 0) throw new NodeError("E_INTERNAL", "appendKeys on a cache that also holds values");
    return this.write(layer, k)[0];
  }

  /** Every layer of a step has the same length and capacity: one mask per step, not one per layer. */
  private lastMask?: { length: number; capacity: number; dtype: mx.Dtype; mask: mx.array };

  private lengthMask(length: number, capacity: number, dtype: mx.Dtype): { mask?: mx.array } {
    if (length === capacity) return {};
    const m = this.lastMask;
    if (m && m.length === length && m.capacity === capacity && m.dtype === dtype) return { mask: m.mask };
    const written = mx.less(mx.arange(0, capacity, 1, mx.int32), mx.array(length, mx.int32));
    const mask = mx
      .where(written, mx.array(0, mx.float32), mx.array(-1e9, mx.float32))
      .astype(dtype)
      .reshape(1, 1, 1, capacity);
    this.lastMask = { length, capacity, dtype, mask };
    return { mask };
  }

  private write(layer: number, k: mx.array, v?: mx.array, views = true): [mx.array, mx.array | undefined] {
    if (this.freed) throw new NodeError("E_INTERNAL", "KV cache used after free");
    const L = k.shape[2]!;
    const start = this.offsets[layer] ?? 0;
    const end = start + L;
    let buf = this.layers[layer];
    if (!buf || end > buf.capacity) buf = this.grow(layer, buf, end, k);
    const S = mx.Slice;
    const at = [S(), S(), S(start, end)];
    buf.keys.indexPut_(at, k);
    if (v) buf.values?.indexPut_(at, v);
    this.offsets[layer] = end;
    if (!views) return [buf.keys, buf.values];
    const upto = [S(), S(), S(0, end)];
    return [buf.keys.index(...upto), buf.values?.index(...upto)];
  }

  /** Drops every buffer; the memory returns once the event loop turns (mlx-notes §4). Idempotent. */
  free(): void {
    this.freed = true;
    this.layers = [];
    this.offsets = [];
  }

  private grow(layer: number, old: LayerBuffers | undefined, needed: number, like: mx.array): LayerBuffers {
    const capacity = Math.ceil(needed / this.step) * this.step;
    const shape = (width: number) => [like.shape[0]!, this.spec.nKvHeads, capacity, width];
    const valueDim = this.spec.valueDim ?? this.spec.headDim;
    const keys = mx.zeros(shape(this.spec.headDim), like.dtype);
    const values = valueDim > 0 ? mx.zeros(shape(valueDim), like.dtype) : undefined;
    if (old) {
      const used = [mx.Slice(), mx.Slice(), mx.Slice(0, this.offsets[layer] ?? 0)];
      keys.indexPut_(used, old.keys.index(...used));
      if (values && old.values) values.indexPut_(used, old.values.index(...used));
    }
    const buf = { keys, values, capacity };
    this.layers[layer] = buf;
    return buf;
  }
}

export function createKVCache(spec: KVCacheSpec): KVCache {
  return new KVCache(spec);
}
