// Tensor ↔ frame parts: dtype + shape travel in the JSON fields, the raw little-endian bytes are the body.
// Pure: no I/O. The byte layout is in src/protocol/README.md.
import { NodeError } from "../errors.ts";
import { DTYPE_BYTES, type DType, type Tensor } from "./types.ts";

/** Number of bytes a tensor of this dtype and shape occupies. */
export function tensorByteLength(dtype: DType, shape: readonly number[]): number {
  let n = DTYPE_BYTES[dtype];
  for (const d of shape) n *= d;
  return n;
}

/** The JSON fields and body that carry `t`. Throws E_PROTOCOL_PAYLOAD if bytes do not match shape × dtype. */
export function encodeTensor(t: Tensor): { fields: { dtype: DType; shape: number[] }; body: Uint8Array } {
  checkTensor(t.dtype, t.shape, t.bytes.byteLength);
  return { fields: { dtype: t.dtype, shape: [...t.shape] }, body: t.bytes };
}

/**
 * The tensor described by `fields.dtype` / `fields.shape` with `body` as its bytes (no copy).
 * @throws NodeError E_PROTOCOL_PAYLOAD when the dtype is unknown, the shape invalid or the body length wrong.
 */
export function decodeTensor(fields: Record<string, unknown>, body: Uint8Array): Tensor {
  const { dtype, shape } = fields;
  if (typeof dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    throw new NodeError(
      "E_PROTOCOL_PAYLOAD",
      `tensor dtype ${JSON.stringify(dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(", ")}`,
    );
  }
  if (!Array.isArray(shape))
    throw new NodeError("E_PROTOCOL_PAYLOAD", `tensor shape must be an array, got ${JSON.stringify(shape)}`);
  checkTensor(dtype as DType, shape, body.byteLength);
  return { dtype: dtype as DType, shape: shape as number[], bytes: body };
}

/** True when the fields describe a tensor (they carry a dtype or a shape). */
export function hasTensor(fields: Record<string, unknown>): boolean {
  return fields.dtype !== undefined || fields.shape !== undefined;
}

function checkTensor(dtype: DType, shape: readonly unknown[], byteLength: number): void {
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new NodeError("E_PROTOCOL_PAYLOAD", `tensor shape [${shape.join(",")}] must hold non-negative integers`);
    }
  }
  const want = tensorByteLength(dtype, shape as number[]);
  if (want !== byteLength) {
    throw new NodeError(
      "E_PROTOCOL_PAYLOAD",
      `tensor ${dtype}[${shape.join(",")}] needs ${want} bytes, body has ${byteLength}`,
    );
  }
}
