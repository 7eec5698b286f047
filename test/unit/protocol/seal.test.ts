// Sealed frames: the layout on the wire, round trips of small and 16 MiB frames, and every way a frame can be
// out of order, replayed, altered or sealed with another key refused with E_PROTOCOL_SEAL.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { FrameDecoder, type RawFrame } from "../../../src/protocol/frame.ts";
import { FrameOpener, FrameSealer, SEAL_OVERHEAD, drainParts, type SealedParts } from "../../../src/protocol/seal.ts";
import { MESSAGE_TYPES } from "../../../src/protocol/types.ts";

const MAX = 256 * 1024 * 1024;
const concat = (parts: SealedParts) => new Uint8Array(Buffer.concat(drainParts(parts)));
const raw = (bytes: Uint8Array): RawFrame => {
  const frames = new FrameDecoder({ maxFrameBytes: MAX }).pushRaw(bytes);
  expect(frames.length).toBe(1);
  return frames[0]!;
};
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe("sealed frames", () => {
  test("start with EXO\\x01, type SEALED, the payload length and the counter; no readable JSON on the wire", () => {
    const sealer = new FrameSealer(randomBytes(32));
    const msg = { type: "HELLO" as const, fields: { node_id: "secret-node", capabilities: { memory: 999 } } };
    const first = concat(sealer.seal(msg, MAX));
    const second = concat(sealer.seal(msg, MAX));
    expect([...first.subarray(0, 5)]).toEqual([0x45, 0x58, 0x4f, 0x01, MESSAGE_TYPES.SEALED]);
    const view = new DataView(first.buffer);
    expect(view.getUint32(5)).toBe(first.length - 9);
    expect(view.getBigUint64(9)).toBe(0n);
    expect(new DataView(second.buffer).getBigUint64(9)).toBe(1n);
    const json = new TextEncoder().encode(JSON.stringify(msg.fields));
    expect(first.length).toBe(9 + 4 + json.length + SEAL_OVERHEAD);
    const text = Buffer.from(first).toString("latin1");
    expect(text).not.toContain("secret-node");
    expect(text).not.toContain("node_id");
    expect(text).not.toContain("capabilities");
    // The same frame sealed twice differs: a counter nonce, never reused.
    expect(Buffer.from(first.subarray(17)).equals(Buffer.from(second.subarray(17)))).toBe(false);
  });

  test("round-trips small frames and a 16 MiB tensor through the streaming decoder in uneven chunks", () => {
    const key = randomBytes(32);
    const sealer = new FrameSealer(key);
    const opener = new FrameOpener(key);
    const body = randomBytes(16 * 1024 * 1024);
    const msgs = [
      { type: "HEALTH" as const, fields: { id: 1 } },
      { type: "TENSOR" as const, fields: { dtype: "uint8", shape: [body.length], requestId: "r" }, body },
      { type: "TOKEN" as const, fields: { token: 7 } },
    ];
    const wire = concat(msgs.flatMap((m) => sealer.seal(m, MAX)));
    // A big body is made piece by piece, on demand.
    expect(sealer.seal(msgs[1]!, MAX).length).toBe(2);
    const decoder = new FrameDecoder({ maxFrameBytes: MAX });
    const frames: RawFrame[] = [];
    for (let at = 0; at < wire.length; ) {
      const n = 1 + ((at * 7919) % 300_000);
      frames.push(...decoder.pushRaw(wire.subarray(at, at + n)));
      at += n;
    }
    expect(frames.map((f) => f.type)).toEqual(["SEALED", "SEALED", "SEALED"]);
    const opened = frames.map((f) => opener.open(f.payload));
    expect(opened.map((m) => m.type)).toEqual(["HEALTH", "TENSOR", "TOKEN"]);
    expect(opened[0]!.fields).toEqual({ id: 1 });
    expect(Buffer.from(opened[1]!.body).equals(body)).toBe(true);
    expect(opened[2]!.fields).toEqual({ token: 7 });
  });

  test("a big sealed frame is decrypted as it arrives (no ciphertext assembled); a flipped byte in it is caught", () => {
    const key = randomBytes(32);
    const sealer = new FrameSealer(key);
    const body = randomBytes(3 * 1024 * 1024 + 5);
    const msgs = [
      { type: "HEALTH" as const, fields: { id: 1 } },
      { type: "TENSOR" as const, fields: { dtype: "uint8", shape: [body.length] }, body },
      { type: "TOKEN" as const, fields: { token: 7 } },
    ];
    const wire = concat(msgs.flatMap((m) => sealer.seal(m, MAX)));
    const receive = (bytes: Uint8Array, chunkBytes = 65_521) => {
      const opener = new FrameOpener(key);
      let streamed = 0;
      const decoder = new FrameDecoder({
        maxFrameBytes: MAX,
        sinkFor: (type, n) => (type === "SEALED" ? (streamed++, opener.openStream(n)) : undefined),
      });
      const got: { type: string; body: Uint8Array }[] = [];
      for (let at = 0; at < bytes.length; at += chunkBytes)
        decoder.pushRaw(bytes.subarray(at, at + chunkBytes), (f) => got.push(f.message ?? opener.open(f.payload)));
      return { got, streamed };
    };
    // Small pieces are gathered before deciphering, big ones (as Bun hands over) deciphered as they come.
    for (const chunkBytes of [65_521, 300_007, 4 * 1024 * 1024]) {
      const { got, streamed } = receive(wire, chunkBytes);
      expect(streamed).toBe(1);
      expect(got.map((m) => m.type)).toEqual(["HEALTH", "TENSOR", "TOKEN"]);
      expect(Buffer.from(got[1]!.body).equals(body)).toBe(true);
    }
    const bad = wire.slice();
    bad[2 * 1024 * 1024] = bad[2 * 1024 * 1024]! ^ 1;
    expect(() => receive(bad)).toThrow("failed authentication");
  });

  test("a reordered or replayed frame is refused, naming the counters", () => {
    const key = randomBytes(32);
    const sealer = new FrameSealer(key);
    const f0 = raw(concat(sealer.seal({ type: "HEALTH", fields: { id: 1 } }, MAX)));
    const f1 = raw(concat(sealer.seal({ type: "HEALTH", fields: { id: 3 } }, MAX)));
    const reordered = new FrameOpener(key);
    expect(() => reordered.open(f1.payload)).toThrow("sealed frame 1 arrived where frame 0 was due");
    const replayed = new FrameOpener(key);
    replayed.open(f0.payload);
    expect(codeOf(() => replayed.open(f0.payload))).toBe("E_PROTOCOL_SEAL");
    expect(replayed.open(f1.payload).fields).toEqual({ id: 3 });
  });

  test("one flipped bit anywhere after the magic, or another key, fails authentication", () => {
    const key = randomBytes(32);
    const frame = concat(new FrameSealer(key).seal({ type: "PROMPT", fields: { tokens: [1, 2, 3] } }, MAX));
    for (let i = 9; i < frame.length; i++) {
      const bad = frame.slice();
      bad[i] = bad[i]! ^ 0x10;
      expect(codeOf(() => new FrameOpener(key).open(bad.subarray(9)))).toBe("E_PROTOCOL_SEAL");
    }
    expect(() => new FrameOpener(randomBytes(32)).open(frame.subarray(9))).toThrow("failed authentication");
    expect(codeOf(() => new FrameOpener(key).open(new Uint8Array(10)))).toBe("E_PROTOCOL_SEAL");
  });

  test("refuses to seal a frame whose sealed payload would exceed the maximum", () => {
    const sealer = new FrameSealer(randomBytes(32));
    expect(codeOf(() => sealer.seal({ type: "TENSOR", body: new Uint8Array(1024) }, 1024))).toBe("E_FRAME_TOO_LARGE");
  });
});
