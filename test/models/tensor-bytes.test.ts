// Tensor bytes between processes and the hand-written RoPE: exact round trips and agreement with MLX's fast.rope.
import { describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { arrayToTensor, tensorToArray } from "../../src/engine/tensor-bytes.ts";
import { ropeWithFreqs } from "../../src/models/base.ts";

describe("tensor bytes", () => {
  test("float32, bfloat16 and int32 arrays round-trip exactly through protocol tensors", () => {
    const x = mx.random.normal([1, 5, 24], mx.float32, 0, 1, mx.random.key(1));
    for (const dtype of [mx.float32, mx.bfloat16, mx.int32]) {
      const a = dtype === mx.int32 ? mx.multiply(x, 100).astype(mx.int32) : x.astype(dtype);
      const t = arrayToTensor(a);
      expect(t.shape).toEqual([1, 5, 24]);
      expect(t.bytes.byteLength).toBe(5 * 24 * a.itemsize);
      const back = tensorToArray(t);
      expect(back.dtype).toBe(dtype);
      expect(Number(mx.max(mx.abs(mx.subtract(back.astype(mx.float32), a.astype(mx.float32)))).item())).toBe(0);
    }
  });

  test("float32 bytes are little-endian values in row-major order", () => {
    const t = arrayToTensor(
      mx.array(
        [
          [1.5, -2],
          [3, 0.25],
        ],
        mx.float32,
      ),
    );
    expect(t.dtype).toBe("float32");
    expect(Array.from(new Float32Array(t.bytes.slice().buffer))).toEqual([1.5, -2, 3, 0.25]);
  });

  test("a tensor whose byte count does not match its shape is refused with E_DTYPE", () => {
    expect(() => tensorToArray({ dtype: "float32", shape: [2, 3], bytes: new Uint8Array(20) })).toThrow(
      /needs 24 bytes/,
    );
  });
});

describe("rope", () => {
  test("explicit-frequency RoPE equals fast.rope for plain frequencies, full and partial, at an offset", () => {
    const x = mx.random.normal([1, 2, 5, 16], mx.float32, 0, 1, mx.random.key(2));
    for (const dims of [16, 8]) {
      const invFreq = Array.from({ length: dims / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / dims));
      const mine = ropeWithFreqs(x, invFreq, dims, 7);
      const fast = mx.fast.rope(x, dims, false, 10000, 1, 7);
      expect(Number(mx.max(mx.abs(mx.subtract(mine, fast))).item())).toBeLessThan(1e-4);
    }
  });
});
