// AEAD-sealed frames (AES-256-GCM): after a keyed handshake every frame travels inside a SEALED frame, one key
// per direction and a counter nonce, so a reordered, replayed or altered frame fails to open. Layout in README.md.
// Pure: cipher state and bytes only; the link decides what a failure means (it closes).
import { createCipheriv, createDecipheriv } from "node:crypto";
import { NodeError } from "../errors.ts";
import { decodePayload, encodeFrame, encodeFrameHead, HEADER_BYTES, MAGIC, type OutgoingMessage } from "./frame.ts";
import { MESSAGE_TYPES, type Message, type MessageTypeName } from "./types.ts";

const COUNTER_BYTES = 8;
const TAG_BYTES = 16;
/** Bytes a sealed frame adds to the payload it carries: counter + inner type byte + tag. */
export const SEAL_OVERHEAD = COUNTER_BYTES + 1 + TAG_BYTES;
/** Bodies at least this large are encrypted into a buffer of their own instead of one copy of the whole frame. */
const SPLIT_BODY_BYTES = 256 * 1024;
const CIPHER = "aes-256-gcm";

const TYPE_NAMES: (MessageTypeName | undefined)[] = [];
for (const [name, code] of Object.entries(MESSAGE_TYPES)) TYPE_NAMES[code] = name as MessageTypeName;

/** The 12-byte GCM nonce of frame `n`: four zero bytes, then the counter big-endian. */
function nonceOf(n: number): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(n));
  return nonce;
}

/** The first 17 bytes of a sealed frame (outer header + counter): also its additional authenticated data. */
function sealedPrefix(payloadBytes: number, n: number, extra: number): Uint8Array {
  const prefix = new Uint8Array(HEADER_BYTES + COUNTER_BYTES + extra);
  const view = new DataView(prefix.buffer);
  prefix.set(MAGIC, 0);
  prefix[4] = MESSAGE_TYPES.SEALED;
  view.setUint32(5, payloadBytes);
  view.setBigUint64(HEADER_BYTES, BigInt(n));
  return prefix;
}

function checkKey(key: Uint8Array): void {
  if (key.byteLength !== 32) throw new NodeError("E_INTERNAL", `a frame key has 32 bytes, got ${key.byteLength}`);
}

/** Seals the frames of one direction; the counter starts at 0 and never repeats under this key. */
export class FrameSealer {
  private readonly key: Uint8Array;
  private counter = 0;

  constructor(key: Uint8Array) {
    checkKey(key);
    this.key = key;
  }

  /**
   * The sealed frame as buffers to write back to back: one for a small frame; for a big body the prefix,
   * the body's ciphertext and the tag (the caller's body is not referenced afterwards).
   * @throws NodeError E_FRAME_TOO_LARGE when the sealed payload exceeds `maxFrameBytes`
   */
  seal(msg: OutgoingMessage, maxFrameBytes: number): Uint8Array[] {
    const body = msg.body ?? new Uint8Array(0);
    const split = body.byteLength >= SPLIT_BODY_BYTES;
    const inner = split ? encodeFrameHead(msg) : encodeFrame(msg);
    // Plaintext: the inner type byte, then the inner payload (fields length, JSON, body) — the inner frame from
    // byte 8 on, with its type written over the last length byte.
    const plainHead = inner.subarray(HEADER_BYTES - 1);
    plainHead[0] = inner[4]!;
    const plainBytes = plainHead.byteLength + (split ? body.byteLength : 0);
    const payloadBytes = COUNTER_BYTES + plainBytes + TAG_BYTES;
    if (payloadBytes > maxFrameBytes || payloadBytes > 0xffffffff) {
      throw new NodeError(
        "E_FRAME_TOO_LARGE",
        `sealed ${msg.type} frame payload of ${payloadBytes} bytes exceeds the maximum of ${maxFrameBytes}`,
      );
    }
    const n = this.counter++;
    const cipher = createCipheriv(CIPHER, this.key, nonceOf(n));
    const prefixBytes = HEADER_BYTES + COUNTER_BYTES;
    const out = sealedPrefix(payloadBytes, n, plainHead.byteLength + (split ? 0 : TAG_BYTES));
    cipher.setAAD(out.subarray(0, prefixBytes));
    out.set(cipher.update(plainHead), prefixBytes);
    if (!split) {
      cipher.final();
      out.set(cipher.getAuthTag(), prefixBytes + plainHead.byteLength);
      return [out];
    }
    const sealedBody = cipher.update(body);
    cipher.final();
    return [out, sealedBody, cipher.getAuthTag()];
  }
}

/** Opens the frames of one direction, in order: frame n must carry counter n. */
export class FrameOpener {
  private readonly key: Uint8Array;
  private expected = 0;

  constructor(key: Uint8Array) {
    checkKey(key);
    this.key = key;
  }

  /**
   * Open a SEALED frame's payload and decode the frame inside.
   * @throws NodeError E_PROTOCOL_SEAL (out of order, replayed, altered or sealed with another key),
   *   E_PROTOCOL_TYPE / E_PROTOCOL_PAYLOAD for a bad inner frame
   */
  open(payload: Uint8Array): Message {
    if (payload.byteLength < SEAL_OVERHEAD) {
      throw new NodeError("E_PROTOCOL_SEAL", `sealed frame of ${payload.byteLength} bytes is too short`);
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const n = view.getBigUint64(0);
    if (n !== BigInt(this.expected)) {
      throw new NodeError(
        "E_PROTOCOL_SEAL",
        `sealed frame ${n} arrived where frame ${this.expected} was due: reordered or replayed`,
      );
    }
    const prefix = sealedPrefix(payload.byteLength, this.expected, 0);
    const decipher = createDecipheriv(CIPHER, this.key, nonceOf(this.expected));
    decipher.setAAD(prefix);
    decipher.setAuthTag(payload.subarray(payload.byteLength - TAG_BYTES));
    let plain: Uint8Array;
    try {
      plain = decipher.update(payload.subarray(COUNTER_BYTES, payload.byteLength - TAG_BYTES));
      decipher.final();
    } catch (cause) {
      throw new NodeError("E_PROTOCOL_SEAL", `sealed frame ${n} failed authentication: altered on the way`, {
        cause,
      });
    }
    this.expected++;
    const type = TYPE_NAMES[plain[0]!];
    if (type === undefined || type === "SEALED" || type === "AUTH") {
      throw new NodeError("E_PROTOCOL_TYPE", `sealed frame ${n} carries message type ${plain[0]}`);
    }
    return decodePayload(type, plain.subarray(1));
  }
}
