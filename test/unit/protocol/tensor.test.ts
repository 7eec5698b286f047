// Tensor ↔ fields + body: shape × dtype must match the body exactly.
import { expect, test } from "bun:test";
import { isNodeError } from "../../../src/errors.ts";
import { FrameDecoder, encodeFrame } from "../../../src/protocol/frame.ts";
import { decodeTensor, encodeTensor, tensorByteLength } from "../../../src/protocol/tensor.ts";
import { DTYPE_BYTES, type DType } from "../../../src/protocol/types.ts";

test("every dtype round-trips through a TENSOR frame with its bytes intact", () => {
  for (const dtype of Object.keys(DTYPE_BYTES) as DType[]) {
    const shape = [2, 1, 3];
    const bytes = new Uint8Array(tensorByteLength(dtype, shape)).map((_, i) => (i * 37) & 255);
    const { fields, body } = encodeTensor({ dtype, shape, bytes });
    const [msg] = new FrameDecoder().push(
      encodeFrame({ type: "TENSOR", fields: { request_id: "r", ...fields }, body }),
    );
    const t = decodeTensor(msg!.fields, msg!.body);
    expect(t.dtype).toBe(dtype);
    expect(t.shape).toEqual(shape);
    expect([...t.bytes]).toEqual([...bytes]);
  }
});

test("a scalar (empty shape) holds exactly one element", () => {
  expect(tensorByteLength("float32", [])).toBe(4);
  expect(decodeTensor({ dtype: "int32", shape: [] }, new Uint8Array(4)).shape).toEqual([]);
});

test("encodeTensor refuses bytes that do not match shape × dtype", () => {
  try {
    encodeTensor({ dtype: "float16", shape: [3], bytes: new Uint8Array(5) });
    throw new Error("expected a throw");
  } catch (err) {
    expect(isNodeError(err) && err.code).toBe("E_PROTOCOL_PAYLOAD");
    expect((err as Error).message).toContain("needs 6 bytes");
  }
});

test("decodeTensor names what is wrong with a bad description", () => {
  const bad: [Record<string, unknown>, string][] = [
    [{ dtype: "float64", shape: [1] }, "float64"],
    [{ dtype: "float32", shape: "2x2" }, "shape must be an array"],
    [{ dtype: "float32", shape: [1.5] }, "non-negative integers"],
  ];
  for (const [fields, words] of bad) {
    expect(() => decodeTensor(fields, new Uint8Array(4))).toThrow(words);
  }
});
