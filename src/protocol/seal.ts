// AEAD-sealed frames (AES-256-GCM): after a keyed handshake every frame travels inside a SEALED frame, one key
// per direction and a counter nonce, so a reordered, replayed or altered frame fails to open. Layout in README.md.
// Pure: cipher state and bytes only; the link decides what a failure means (it closes).
import { createCipheriv, createDecipheriv, createSecretKey, type DecipherGCM, type KeyObject } from "node:crypto";
import { NodeError } from "../errors.ts";
import {
  decodePayload,
  encodeFrame,
  encodeFrameHead,
  HEADER_BYTES,
  MAGIC,
  type OutgoingMessage,
  type PayloadSink,
} from "./frame.ts";
import { PayloadAssembler, type PayloadParts } from "./payload-assembler.ts";
import { MESSAGE_TYPES, type Message, type MessageTypeName } from "./types.ts";

const COUNTER_BYTES = 8;
const TAG_BYTES = 16;
/** Bytes a sealed frame adds to the payload it carries: counter + inner type byte + tag. */
export const SEAL_OVERHEAD = COUNTER_BYTES + 1 + TAG_BYTES;
/** Bodies at least this large are encrypted a piece at a time as the socket takes them, not into one copy. */
const SPLIT_BODY_BYTES = 256 * 1024;
/** The piece: big enough that per-call costs vanish, small enough to stay in cache and overlap with sending. */
const PIECE_BYTES = 1024 * 1024;
/** Received pieces at least this large are deciphered as they are, smaller ones gathered into a slice first. */
const DIRECT_BYTES = 16 * 1024;
/**
 * At most this much is deciphered per call (Bun hands over up to 512 KiB): each call has a cost of its own;
 * 64 KiB slices (to copy the plaintext while still in cache) measured about 1 ms more per 16 MiB frame on a
 * receiver like bench/net.ts's, with no gain from the cache.
 */
const SLICE_BYTES = 512 * 1024;

/** Bytes made on demand: a big body's ciphertext, a piece per next(), then its tag. */
export interface LazyBytes {
  readonly byteLength: number;
  next(): Uint8Array | undefined;
}

/** One sealed frame's parts, in order. */
export type SealedParts = (Uint8Array | LazyBytes)[];

/** Every byte of sealed parts, produced now (tests, and callers that want one buffer list). */
export function drainParts(parts: SealedParts): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const p of parts) {
    if (p instanceof Uint8Array) out.push(p);
    else for (let b = p.next(); b; b = p.next()) out.push(b);
  }
  return out;
}
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
  private readonly key: KeyObject; // imported once: a cipher per frame then costs a couple of microseconds
  private counter = 0;

  constructor(key: Uint8Array) {
    checkKey(key);
    this.key = createSecretKey(key);
  }

  /**
   * The sealed frame as parts to write back to back: one buffer for a small frame; for a big body the prefix,
   * then the body's ciphertext and tag made piece by piece (the body must stay unchanged until all are made).
   * @throws NodeError E_FRAME_TOO_LARGE when the sealed payload exceeds `maxFrameBytes`
   */
  seal(msg: OutgoingMessage, maxFrameBytes: number): SealedParts {
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
    let at = 0;
    let done = false;
    const rest: LazyBytes = {
      byteLength: body.byteLength + TAG_BYTES,
      next: () => {
        if (at < body.byteLength) {
          const piece = cipher.update(body.subarray(at, at + PIECE_BYTES));
          at += PIECE_BYTES;
          return piece;
        }
        if (done) return undefined;
        done = true;
        cipher.final();
        return cipher.getAuthTag();
      },
    };
    return [out, rest];
  }
}

/** Opens the frames of one direction, in order: frame n must carry counter n. */
export class FrameOpener {
  private readonly key: KeyObject;
  private expected = 0;

  constructor(key: Uint8Array) {
    checkKey(key);
    this.key = createSecretKey(key);
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
    const decipher = this.begin(payload.subarray(0, COUNTER_BYTES), payload.byteLength);
    const plain = decipher.update(payload.subarray(COUNTER_BYTES, payload.byteLength - TAG_BYTES));
    const n = this.authenticate(decipher, payload.subarray(payload.byteLength - TAG_BYTES));
    return decodePayload(this.innerType(n, plain[0]!), plain.subarray(1));
  }

  /**
   * Open a big SEALED frame as it arrives: the ciphertext is deciphered a slice at a time straight into a
   * PayloadAssembler, so neither the ciphertext nor the whole plaintext is ever gathered, and the body ends up in
   * a buffer of its own. The same checks as open(); nothing of the frame is used before its tag holds.
   */
  openStream(payloadBytes: number): PayloadSink {
    if (payloadBytes < SEAL_OVERHEAD) {
      throw new NodeError("E_PROTOCOL_SEAL", `sealed frame of ${payloadBytes} bytes is too short`);
    }
    const plainBytes = payloadBytes - COUNTER_BYTES - TAG_BYTES;
    const counter = new Uint8Array(COUNTER_BYTES);
    const tag = new Uint8Array(TAG_BYTES);
    const inner = new InnerPayload(plainBytes);
    // Each decipher call has a cost of its own: small pieces are gathered into one slice first.
    const staged = new Uint8Array(Math.min(SLICE_BYTES, plainBytes));
    let stagedBytes = 0;
    let decipher: DecipherGCM | undefined;
    let pos = 0;
    const decrypt = (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.byteLength; at += SLICE_BYTES)
        inner.write(decipher!.update(bytes.subarray(at, at + SLICE_BYTES)));
    };
    const flushStaged = () => {
      if (stagedBytes > 0) decrypt(staged.subarray(0, stagedBytes));
      stagedBytes = 0;
    };
    const ciphertext = (part: Uint8Array) => {
      for (let at = 0; at < part.byteLength; ) {
        if (stagedBytes === 0 && part.byteLength - at >= DIRECT_BYTES) return decrypt(part.subarray(at));
        const n = Math.min(part.byteLength - at, staged.byteLength - stagedBytes);
        staged.set(part.subarray(at, at + n), stagedBytes);
        stagedBytes += n;
        at += n;
        if (stagedBytes === staged.byteLength) flushStaged();
      }
    };
    return {
      write: (bytes) => {
        for (let off = 0; off < bytes.byteLength; ) {
          if (pos < COUNTER_BYTES) {
            const k = Math.min(COUNTER_BYTES - pos, bytes.byteLength - off);
            counter.set(bytes.subarray(off, off + k), pos);
            pos += k;
            off += k;
            if (pos === COUNTER_BYTES) decipher = this.begin(counter, payloadBytes);
          } else if (pos < COUNTER_BYTES + plainBytes) {
            const k = Math.min(COUNTER_BYTES + plainBytes - pos, bytes.byteLength - off);
            ciphertext(bytes.subarray(off, off + k));
            pos += k;
            off += k;
          } else {
            flushStaged();
            const k = Math.min(payloadBytes - pos, bytes.byteLength - off);
            tag.set(bytes.subarray(off, off + k), pos - COUNTER_BYTES - plainBytes);
            pos += k;
            off += k;
          }
        }
      },
      finish: () => {
        flushStaged();
        const n = this.authenticate(decipher!, tag);
        const type = this.innerType(n, inner.typeByte);
        const { fields, body } = inner.parts();
        return decodePayload(type, fields, body);
      },
    };
  }

  /** Check the counter (the next one, or the frame was reordered or replayed) and start deciphering. */
  private begin(counter: Uint8Array, payloadBytes: number): DecipherGCM {
    const n = new DataView(counter.buffer, counter.byteOffset, COUNTER_BYTES).getBigUint64(0);
    if (n !== BigInt(this.expected)) {
      throw new NodeError(
        "E_PROTOCOL_SEAL",
        `sealed frame ${n} arrived where frame ${this.expected} was due: reordered or replayed`,
      );
    }
    const decipher = createDecipheriv(CIPHER, this.key, nonceOf(this.expected));
    decipher.setAAD(sealedPrefix(payloadBytes, this.expected, 0));
    return decipher;
  }

  /** Verify the tag; only then does the counter move on (returned: this frame's number). */
  private authenticate(decipher: DecipherGCM, tag: Uint8Array): number {
    try {
      decipher.setAuthTag(tag);
      decipher.final();
    } catch (cause) {
      throw new NodeError(
        "E_PROTOCOL_SEAL",
        `sealed frame ${this.expected} failed authentication: altered on the way`,
        { cause },
      );
    }
    return this.expected++;
  }

  /** The type of the frame inside sealed frame n: never another SEALED, nor AUTH (only sent before sealing). */
  private innerType(n: number, byte: number): MessageTypeName {
    const type = TYPE_NAMES[byte];
    if (type === undefined || type === "SEALED" || type === "AUTH") {
      throw new NodeError("E_PROTOCOL_TYPE", `sealed frame ${n} carries message type ${byte}`);
    }
    return type;
  }
}

/**
 * The deciphered bytes of a big sealed frame as they come: the inner type byte, then the inner payload, split
 * into fields and body by a PayloadAssembler. Until the tag is checked these bytes are unauthenticated, so a
 * payload error met on the way (a bad fields length) is kept and thrown only by parts(), after the tag: an
 * altered frame is reported as such, exactly as by open().
 */
class InnerPayload {
  private readonly plainBytes: number;
  private type: number | undefined;
  private assembler: PayloadAssembler | undefined;
  private error: unknown;

  constructor(plainBytes: number) {
    this.plainBytes = plainBytes;
  }

  /** The inner type byte (once the first plaintext byte is in). */
  get typeByte(): number {
    return this.type ?? -1;
  }

  write(plain: Uint8Array): void {
    if (plain.byteLength === 0 || this.error !== undefined) return;
    try {
      let payload = plain;
      if (this.type === undefined) {
        this.type = plain[0]!;
        payload = plain.subarray(1);
        this.assembler = new PayloadAssembler(TYPE_NAMES[this.type] ?? `type ${this.type}`, this.plainBytes - 1);
      }
      this.assembler!.write(payload);
    } catch (err) {
      this.error = err;
    }
  }

  /**
   * The inner payload's fields part and body.
   * @throws NodeError E_PROTOCOL_PAYLOAD kept from write()
   */
  parts(): PayloadParts {
    if (this.error !== undefined) throw this.error;
    return this.assembler!.parts();
  }
}
