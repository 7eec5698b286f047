// Big payloads arrive split: the fields part and the body each in a buffer of exactly their size, plain or
// sealed, however the bytes are cut; a bad fields length is refused at its 4th byte; tampering is still caught.
import { describe, expect, test } from "bun:test";
import { createCipheriv, randomBytes } from "node:crypto";
import { isNodeError } from "../../../src/errors.ts";
import { FrameDecoder, decodePayload, encodeFrame, type RawFrame } from "../../../src/protocol/frame.ts";
import { PayloadAssembler } from "../../../src/protocol/payload-assembler.ts";
import { FrameOpener, FrameSealer, drainParts } from "../../../src/protocol/seal.ts";
import { MESSAGE_TYPES, type Message } from "../../../src/protocol/types.ts";

const MiB = 1024 * 1024;
const MAX = 256 * MiB;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isNodeError(err) ? `${err.code}: ${err.message}` : `not a NodeError: ${String(err)}`;
  }
  return "no error";
}

/** True when the bytes are the whole of their ArrayBuffer: what the tensor code can keep without a copy. */
const ownsBuffer = (b: Uint8Array) => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;

/** A payload: fields length, JSON, body. */
function payloadOf(fields: object, body: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(fields));
  const p = new Uint8Array(4 + json.length + body.length);
  new DataView(p.buffer).setUint32(0, json.length);
  p.set(json, 4);
  p.set(body, 4 + json.length);
  return p;
}

const pattern = (n: number) => new Uint8Array(n).map((_, i) => (i * 31 + (i >> 8)) & 255);
const bigBody = pattern(2 * MiB + 3);
const bigTensor = {
  type: "TENSOR" as const,
  fields: { dtype: "uint8", shape: [bigBody.length], request_id: "r" },
  body: bigBody,
};

describe("PayloadAssembler", () => {
  test("splits fields and body correctly for a payload cut into two or three pieces at every boundary", () => {
    const body = pattern(50);
    const p = payloadOf({ a: 1 }, body);
    const fieldsBytes = p.length - body.length;
    for (let i = 0; i <= p.length; i++) {
      for (let j = i; j <= p.length; j++) {
        const asm = new PayloadAssembler("TENSOR", p.length);
        const cuts = [0, i, j, p.length];
        for (let k = 1; k < cuts.length; k++) {
          asm.write(p.subarray(cuts[k - 1], cuts[k]));
          expect(asm.complete).toBe(cuts[k] === p.length);
        }
        const { fields, body: got } = asm.parts();
        expect([...fields]).toEqual([...p.subarray(0, fieldsBytes)]);
        expect([...got]).toEqual([...body]);
        expect(decodePayload("TENSOR", fields, got).fields).toEqual({ a: 1 });
      }
    }
  });

  test("an empty body and an empty JSON are parts too", () => {
    const noBody = payloadOf({ x: "y" }, new Uint8Array(0));
    const asm = new PayloadAssembler("PROMPT", noBody.length);
    asm.write(noBody);
    expect(asm.parts().body.byteLength).toBe(0);
    const justLength = new PayloadAssembler("HEALTH", 4);
    justLength.write(new Uint8Array(4));
    expect(justLength.parts().fields.byteLength).toBe(4);
  });

  test("refuses a fields length past the payload at its 4th byte, and a payload too short to hold one", () => {
    const asm = new PayloadAssembler("TENSOR", 100);
    asm.write(Uint8Array.of(0, 0, 0));
    expect(codeOf(() => asm.write(Uint8Array.of(97)))).toBe(
      "E_PROTOCOL_PAYLOAD: TENSOR fields length 97 runs past the 100-byte payload",
    );
    expect(codeOf(() => new PayloadAssembler("TENSOR", 3))).toStartWith("E_PROTOCOL_PAYLOAD");
    const full = new PayloadAssembler("TENSOR", 4);
    full.write(new Uint8Array(4));
    expect(codeOf(() => full.write(new Uint8Array(1)))).toStartWith("E_INTERNAL");
    expect(codeOf(() => new PayloadAssembler("TENSOR", 8).parts())).toStartWith("E_INTERNAL");
  });
});

describe("a big plain frame", () => {
  test("arrives with its body in a buffer of its own, split right wherever the chunks are cut", () => {
    const frame = encodeFrame(bigTensor);
    const small = encodeFrame({ type: "END", fields: { request_id: "z" } });
    const stream = Buffer.concat([frame, small, frame]);
    const fieldsEnd = 9 + 4 + new TextEncoder().encode(JSON.stringify(bigTensor.fields)).length;
    // Cuts inside the header, inside the fields length, around the JSON's end, inside the body, just before the
    // frame's end and in the next frame; then one-byte chunks through the start.
    const cuts = [3, 9, 10, 12, 13, fieldsEnd - 1, fieldsEnd, fieldsEnd + 1, MiB, frame.length - 1, frame.length + 7];
    const plans = [cuts, Array.from({ length: fieldsEnd + 3 }, (_, i) => i + 1), [frame.length, frame.length + 1]];
    for (const plan of plans) {
      const dec = new FrameDecoder({ maxFrameBytes: MAX });
      const raws: RawFrame[] = [];
      let at = 0;
      for (const cut of [...plan, stream.length]) {
        raws.push(...dec.pushRaw(stream.subarray(at, cut)));
        at = cut;
      }
      expect(raws.map((f) => f.type)).toEqual(["TENSOR", "END", "TENSOR"]);
      for (const f of [raws[0]!, raws[2]!]) {
        expect(ownsBuffer(f.body!)).toBe(true);
        expect(f.payload.byteLength).toBe(fieldsEnd - 9);
        const msg = decodePayload(f.type, f.payload, f.body);
        expect(msg.fields).toEqual(bigTensor.fields);
        expect(msg.body).toBe(f.body!); // passed on, not copied
        expect(Buffer.from(msg.body).equals(bigBody)).toBe(true);
      }
      expect(raws[1]!.body).toBeUndefined();
      expect(dec.bufferedBytes).toBe(0);
    }
  });

  test("push() decodes it the same, body in its own buffer", () => {
    const [msg] = new FrameDecoder().push(encodeFrame(bigTensor));
    expect(ownsBuffer(msg!.body)).toBe(true);
    expect(Buffer.from(msg!.body).equals(bigBody)).toBe(true);
  });

  test("with a fields length past its payload is refused as soon as that length arrives; the decoder stays failed", () => {
    const frame = encodeFrame(bigTensor);
    new DataView(frame.buffer).setUint32(9, frame.length); // longer than the whole payload
    let released = 0;
    const budget = { reserve: () => true, release: (n: number) => void (released += n), describe: () => "" };
    const dec = new FrameDecoder({ budget });
    const firstMiB = frame.subarray(0, MiB + 100); // enough to start the streamed path; the rest never comes
    expect(codeOf(() => dec.pushRaw(firstMiB))).toBe(
      `E_PROTOCOL_PAYLOAD: TENSOR fields length ${frame.length} runs past the ${frame.length - 9}-byte payload`,
    );
    expect(released).toBe(frame.length - 9);
    expect(codeOf(() => dec.pushRaw(encodeFrame({ type: "HEALTH" })))).toStartWith("E_PROTOCOL_PAYLOAD");
  });
});

describe("a big sealed frame", () => {
  /** A decoder opening sealed frames on the way in, as a keyed link does. */
  function receive(key: Uint8Array, wire: Uint8Array, chunkBytes: number): Message[] {
    const opener = new FrameOpener(key);
    const dec = new FrameDecoder({
      maxFrameBytes: MAX,
      sinkFor: (type, n) => (type === "SEALED" ? opener.openStream(n) : undefined),
    });
    const got: Message[] = [];
    for (let at = 0; at < wire.length; at += chunkBytes)
      dec.pushRaw(wire.subarray(at, at + chunkBytes), (f) => got.push(f.message ?? opener.open(f.payload)));
    return got;
  }

  const key = randomBytes(32);
  const sealed = (msgs: Parameters<FrameSealer["seal"]>[0][]) => {
    const sealer = new FrameSealer(key);
    return new Uint8Array(Buffer.concat(msgs.flatMap((m) => drainParts(sealer.seal(m, MAX)))));
  };

  test("is opened with its body in a buffer of its own, for chunks of every size Bun may hand over", () => {
    const wire = sealed([{ type: "HEALTH", fields: { id: 1 } }, bigTensor, { type: "TOKEN", fields: { token: 7 } }]);
    for (const chunkBytes of [1000, 16 * 1024 - 1, 65_536, 100_003, 512 * 1024, 4 * MiB]) {
      const got = receive(key, wire, chunkBytes);
      expect(got.map((m) => m.type)).toEqual(["HEALTH", "TENSOR", "TOKEN"]);
      expect(got[1]!.fields).toEqual(bigTensor.fields);
      expect(ownsBuffer(got[1]!.body)).toBe(true);
      expect(Buffer.from(got[1]!.body).equals(bigBody)).toBe(true);
    }
  });

  test("altered anywhere (fields length, JSON, body, tag) fails authentication, not on what the alteration reads as", () => {
    const wire = sealed([bigTensor]);
    // 17 = outer header + counter; then the inner type byte, fields length (18..21), JSON, body; the tag last.
    for (const at of [17, 18, 21, 30, MiB, wire.length - 17, wire.length - 1]) {
      const bad = wire.slice();
      bad[at] = bad[at]! ^ 0x80;
      expect(`${at}: ${codeOf(() => receive(key, bad, 65_536))}`).toBe(
        `${at}: E_PROTOCOL_SEAL: sealed frame 0 failed authentication: altered on the way`,
      );
    }
  });

  test("authentic but with a bad fields length inside is refused as a bad payload, once its tag has held", () => {
    // Sealed by hand (layout in README.md): a TENSOR whose fields length runs past its payload.
    const inner = payloadOf({ dtype: "uint8" }, new Uint8Array(2 * MiB));
    new DataView(inner.buffer).setUint32(0, inner.length);
    const plain = Buffer.concat([Uint8Array.of(MESSAGE_TYPES.TENSOR), inner]);
    const prefix = new Uint8Array(17);
    prefix.set([0x45, 0x58, 0x4f, 0x01, MESSAGE_TYPES.SEALED]);
    new DataView(prefix.buffer).setUint32(5, 8 + plain.length + 16);
    const cipher = createCipheriv("aes-256-gcm", key, new Uint8Array(12));
    cipher.setAAD(prefix);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    const wire = new Uint8Array(Buffer.concat([prefix, body, cipher.getAuthTag()]));
    expect(codeOf(() => receive(key, wire, 65_536))).toBe(
      `E_PROTOCOL_PAYLOAD: TENSOR fields length ${inner.length} runs past the ${inner.length}-byte payload`,
    );
  });
});
