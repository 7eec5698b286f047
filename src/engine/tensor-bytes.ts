// mx.array ↔ protocol Tensor {dtype, shape, bytes}, and safetensors headers. The binding has no typed-array
// interop, so bytes cross through a safetensors file on a tmpfs (/dev/shm; os.tmpdir() where absent).
import { core as mx } from "@frost-beta/mlx";
import { closeSync, existsSync, openSync, readFileSync, readSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NodeError } from "../errors.ts";
import { DTYPE_BYTES, type DType, type Tensor } from "../protocol/types.ts";

const TO_SAFETENSORS: Record<DType, string> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  int32: "I32",
  uint32: "U32",
  int8: "I8",
  uint8: "U8",
};
const FROM_SAFETENSORS = Object.fromEntries(Object.entries(TO_SAFETENSORS).map(([k, v]) => [v, k as DType]));

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the data section. */
  data_offsets: [number, number];
}

const tmpRoot = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
let counter = 0;
const tmpPath = () =>
  join(tmpRoot, `exo-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}.safetensors`);

/** Reads only the JSON header of a safetensors file. @throws E_WEIGHTS when the header is not valid. */
export function readSafetensorsHeader(path: string): { entries: Record<string, SafetensorsEntry>; dataStart: number } {
  const fd = openSync(path, "r");
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8)
      throw new NodeError("E_WEIGHTS", `${path}: too short for a safetensors header`);
    const headerLen = Number(len.readBigUInt64LE(0));
    if (headerLen <= 0 || headerLen > 100 * 1024 * 1024)
      throw new NodeError("E_WEIGHTS", `${path}: bad safetensors header length ${headerLen}`);
    const header = Buffer.alloc(headerLen);
    if (readSync(fd, header, 0, headerLen, 8) !== headerLen)
      throw new NodeError("E_WEIGHTS", `${path}: truncated safetensors header`);
    const parsed = JSON.parse(header.toString("utf8")) as Record<string, unknown>;
    delete parsed.__metadata__;
    return { entries: parsed as Record<string, SafetensorsEntry>, dataStart: 8 + headerLen };
  } catch (err) {
    if (err instanceof NodeError) throw err;
    throw new NodeError("E_WEIGHTS", `${path}: unreadable safetensors header`, { cause: err });
  } finally {
    closeSync(fd);
  }
}

/** Evaluates `a` and returns its bytes as a protocol Tensor. @throws E_DTYPE for a dtype the wire cannot carry. */
export function arrayToTensor(a: mx.array): Tensor {
  const path = tmpPath();
  try {
    mx.saveSafetensors(path, { t: a });
    const file = readFileSync(path);
    const headerLen = Number(file.readBigUInt64LE(0));
    const entry = (JSON.parse(file.subarray(8, 8 + headerLen).toString("utf8")) as Record<string, SafetensorsEntry>).t!;
    const dtype = FROM_SAFETENSORS[entry.dtype];
    if (!dtype) throw new NodeError("E_DTYPE", `cannot send a ${entry.dtype} tensor on the wire`);
    const start = 8 + headerLen + entry.data_offsets[0];
    const bytes = new Uint8Array(
      file.buffer.slice(file.byteOffset + start, file.byteOffset + 8 + headerLen + entry.data_offsets[1]),
    );
    return { dtype, shape: entry.shape, bytes };
  } finally {
    if (existsSync(path)) unlinkSync(path);
  }
}

/** Builds an evaluated mx.array from a protocol Tensor. @throws E_DTYPE when bytes do not match dtype × shape. */
export function tensorToArray(t: Tensor): mx.array {
  const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
  if (t.bytes.byteLength !== expected) {
    throw new NodeError(
      "E_DTYPE",
      `tensor ${t.dtype}[${t.shape.join(",")}] needs ${expected} bytes, got ${t.bytes.byteLength}`,
    );
  }
  let header = JSON.stringify({ t: { dtype: TO_SAFETENSORS[t.dtype], shape: t.shape, data_offsets: [0, expected] } });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const headerBytes = Buffer.from(header, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const path = tmpPath();
  try {
    writeFileSync(path, Buffer.concat([len, headerBytes, t.bytes]));
    const a = (mx.load(path) as unknown as Record<string, mx.array>).t!;
    // mx.load is lazy: the file must be read before it is deleted.
    mx.eval(a);
    return a;
  } finally {
    if (existsSync(path)) unlinkSync(path);
  }
}
