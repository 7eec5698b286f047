// Pins the frame layout of src/protocol/README.md and the streaming decoder's behaviour on every fault.
import { describe, expect, test } from "bun:test";
import { isNodeError } from "../../../src/errors.ts";
import {
  FrameDecoder,
  HEADER_BYTES,
  MAX_FRAME_BYTES,
  encodeFrame,
  type OutgoingMessage,
} from "../../../src/protocol/frame.ts";
import { MESSAGE_TYPES, type MessageTypeName } from "../../../src/protocol/types.ts";

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isNodeError(err) ? err.code : `not a NodeError: ${String(err)}`;
  }
  return "no error";
}

function header(type: number, length: number): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  h.set([0x45, 0x58, 0x4f, 0x01, type]);
  new DataView(h.buffer).setUint32(5, length);
  return h;
}

function payload(json: string, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const j = new TextEncoder().encode(json);
  const p = new Uint8Array(4 + j.length + body.length);
  new DataView(p.buffer).setUint32(0, j.length);
  p.set(j, 4);
  p.set(body, 4 + j.length);
  return p;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const sample: OutgoingMessage = {
  type: "TENSOR",
  fields: { id: 7, request_id: "r-1", dtype: "float32", shape: [2, 3], note: "héllo ✓" },
  body: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer),
};

describe("encodeFrame", () => {
  test("writes magic, type and big-endian payload length, then fields length, JSON and body", () => {
    const frame = encodeFrame({ type: "HEALTH", fields: { id: 1 }, body: Uint8Array.of(9, 8) });
    const json = new TextEncoder().encode('{"id":1}');
    expect([...frame.subarray(0, 5)]).toEqual([0x45, 0x58, 0x4f, 0x01, MESSAGE_TYPES.HEALTH]);
    const view = new DataView(frame.buffer);
    expect(view.getUint32(5)).toBe(4 + json.length + 2);
    expect(view.getUint32(9)).toBe(json.length);
    expect([...frame.subarray(13, 13 + json.length)]).toEqual([...json]);
    expect([...frame.subarray(13 + json.length)]).toEqual([9, 8]);
    expect(frame.length).toBe(HEADER_BYTES + 4 + json.length + 2);
  });

  test("refuses a payload larger than the maximum", () => {
    expect(codeOf(() => encodeFrame({ type: "TENSOR", body: new Uint8Array(100) }, 64))).toBe("E_FRAME_TOO_LARGE");
  });
});

describe("FrameDecoder", () => {
  test("UNLOAD and the peer file types keep their codes (16-19)", () => {
    expect([MESSAGE_TYPES.UNLOAD, MESSAGE_TYPES.BLOB_HAVE, MESSAGE_TYPES.BLOB_READ, MESSAGE_TYPES.REPO_FILES]).toEqual([
      16, 17, 18, 19,
    ]);
    const frame = encodeFrame({ type: "BLOB_READ", fields: { id: 1 }, body: Uint8Array.of(7) });
    expect(frame[4]).toBe(18);
    expect(new FrameDecoder().push(frame)[0]?.type).toBe("BLOB_READ");
  });

  test("round-trips every message type", () => {
    const names = Object.keys(MESSAGE_TYPES) as MessageTypeName[];
    const dec = new FrameDecoder();
    const frames = names.map((type, i) =>
      encodeFrame({ type, fields: { id: i, type_name: type }, body: Uint8Array.of(i, 255 - i) }),
    );
    const out = dec.push(concat(...frames));
    expect(out.map((m) => m.type)).toEqual(names);
    out.forEach((m, i) => {
      expect(m.fields).toEqual({ id: i, type_name: names[i] });
      expect([...m.body]).toEqual([i, 255 - i]);
    });
  });

  test("decodes a frame split at every byte boundary", () => {
    const frame = encodeFrame(sample);
    for (let cut = 0; cut <= frame.length; cut++) {
      const dec = new FrameDecoder();
      const a = dec.push(frame.subarray(0, cut));
      const b = dec.push(frame.subarray(cut));
      const all = [...a, ...b];
      expect(all.length).toBe(1);
      expect(all[0]!.fields).toEqual(sample.fields!);
      expect([...all[0]!.body]).toEqual([...sample.body!]);
      expect(dec.bufferedBytes).toBe(0);
    }
  });

  test("decodes a frame fed one byte at a time", () => {
    const frame = encodeFrame(sample);
    const dec = new FrameDecoder();
    const got = [];
    for (let i = 0; i < frame.length; i++) got.push(...dec.push(frame.subarray(i, i + 1)));
    expect(got.length).toBe(1);
    expect(got[0]!.type).toBe("TENSOR");
  });

  test("returns two frames that arrive in one chunk, and keeps the tail of a third", () => {
    const f1 = encodeFrame({ type: "HEALTH", fields: { id: 1 } });
    const f2 = encodeFrame({ type: "HEALTH_OK", fields: { id: 1 } });
    const f3 = encodeFrame({ type: "END", fields: { request_id: "x" } });
    const dec = new FrameDecoder();
    const out = dec.push(concat(f1, f2, f3.subarray(0, 5)));
    expect(out.map((m) => m.type)).toEqual(["HEALTH", "HEALTH_OK"]);
    expect(dec.bufferedBytes).toBe(5);
    expect(dec.push(f3.subarray(5)).map((m) => m.fields)).toEqual([{ request_id: "x" }]);
  });

  test("decodes payloads of a megabyte and more fed in uneven chunks, with a small frame in the same chunk", () => {
    const bytes = new Uint8Array(1536 * 1024 + 3).map((_, i) => (i * 7 + (i >> 9)) & 255);
    const big = encodeFrame({ type: "TENSOR", fields: { dtype: "uint8", shape: [bytes.length] }, body: bytes });
    const small = encodeFrame({ type: "END", fields: { request_id: "z" } });
    const stream = concat(big, small, big);
    for (const step of [997, 4093, 65536, 700_000, big.length - 1, big.length + 5]) {
      const dec = new FrameDecoder();
      const got = [];
      for (let at = 0; at < stream.length; at += step) got.push(...dec.push(stream.subarray(at, at + step)));
      expect(got.map((m) => m.type)).toEqual(["TENSOR", "END", "TENSOR"]);
      expect(Bun.hash(got[0]!.body)).toBe(Bun.hash(bytes));
      expect(Bun.hash(got[2]!.body)).toBe(Bun.hash(bytes));
      expect(dec.bufferedBytes).toBe(0);
    }
  });

  test("rejects bad magic as soon as the first wrong byte arrives", () => {
    expect(codeOf(() => new FrameDecoder().push(Uint8Array.of(0x47)))).toBe("E_PROTOCOL_MAGIC");
    expect(codeOf(() => new FrameDecoder().push(new TextEncoder().encode("GET / HTTP/1.1\r\n")))).toBe(
      "E_PROTOCOL_MAGIC",
    );
  });

  test("rejects an unknown protocol version", () => {
    const frame = encodeFrame({ type: "HEALTH" });
    frame[3] = 2;
    expect(codeOf(() => new FrameDecoder().push(frame))).toBe("E_PROTOCOL_VERSION");
  });

  test("rejects unknown message types", () => {
    for (const t of [0, Object.keys(MESSAGE_TYPES).length + 1, 255]) {
      expect(codeOf(() => new FrameDecoder().push(header(t, 4)))).toBe("E_PROTOCOL_TYPE");
    }
  });

  test("rejects an oversized length from the header alone, before any payload arrives or is allocated", () => {
    const dec = new FrameDecoder();
    expect(codeOf(() => dec.push(header(MESSAGE_TYPES.TENSOR, MAX_FRAME_BYTES + 1)))).toBe("E_FRAME_TOO_LARGE");
    expect(codeOf(() => new FrameDecoder({ maxFrameBytes: 1024 }).push(header(MESSAGE_TYPES.TENSOR, 1025)))).toBe(
      "E_FRAME_TOO_LARGE",
    );
    expect(codeOf(() => new FrameDecoder().push(header(MESSAGE_TYPES.TENSOR, 0xffffffff)))).toBe("E_FRAME_TOO_LARGE");
  });

  test("accepts a frame of exactly the maximum size", () => {
    const frame = encodeFrame({ type: "TENSOR", body: new Uint8Array(100) }, 106);
    expect(new FrameDecoder({ maxFrameBytes: 106 }).push(frame).length).toBe(1);
  });

  test("waits for the rest of a truncated frame and returns nothing", () => {
    const frame = encodeFrame(sample);
    const dec = new FrameDecoder();
    expect(dec.push(frame.subarray(0, frame.length - 1))).toEqual([]);
    expect(dec.bufferedBytes).toBe(frame.length - 1);
  });

  test("rejects malformed payloads", () => {
    const cases: [string, Uint8Array][] = [
      ["shorter than the fields length", Uint8Array.of(0, 0)],
      ["fields length past the end", payload("{}").map((b, i) => (i === 3 ? 200 : b))],
      ["invalid JSON", payload("{not json")],
      ["JSON that is not an object", payload("[1,2]")],
      ["JSON null", payload("null")],
      ["invalid UTF-8", concat(Uint8Array.of(0, 0, 0, 3), Uint8Array.of(0x22, 0xff, 0x22))],
      ["body shorter than shape × dtype", payload('{"dtype":"float32","shape":[2,3]}', new Uint8Array(20))],
      ["body longer than shape × dtype", payload('{"dtype":"int8","shape":[2]}', new Uint8Array(3))],
      ["unknown dtype", payload('{"dtype":"float64","shape":[1]}', new Uint8Array(8))],
      ["negative dimension", payload('{"dtype":"int8","shape":[-1]}')],
    ];
    for (const [what, p] of cases) {
      const code = codeOf(() => new FrameDecoder().push(concat(header(MESSAGE_TYPES.TENSOR, p.length), p)));
      expect(`${what}: ${code}`).toBe(`${what}: E_PROTOCOL_PAYLOAD`);
    }
  });

  test("stays failed after a bad frame, even if a good frame follows", () => {
    const dec = new FrameDecoder();
    expect(codeOf(() => dec.push(Uint8Array.of(1, 2, 3)))).toBe("E_PROTOCOL_MAGIC");
    expect(codeOf(() => dec.push(encodeFrame({ type: "HEALTH" })))).toBe("E_PROTOCOL_MAGIC");
  });

  test("survives thousands of random byte streams with only NodeErrors", () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const good = encodeFrame(sample);
    for (let i = 0; i < 3000; i++) {
      const bytes = good.slice();
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      const dec = new FrameDecoder({ maxFrameBytes: 1 << 20 });
      try {
        dec.push(bytes.subarray(0, Math.floor(rand() * bytes.length)));
        dec.push(bytes);
      } catch (err) {
        expect(isNodeError(err)).toBe(true);
      }
    }
  });
});
