// Splits a big payload as its bytes arrive: the fields part (4-byte fields length + JSON) and the body each go
// into a buffer of exactly their size, so the body is an ArrayBuffer of its own that the tensor code can keep
// without copying it again. Pure: no sockets, timers or logging. Payload layout in README.md.
import { NodeError } from "../errors.ts";

const FIELDS_LENGTH_BYTES = 4;

/**
 * A byte array that is not zero-filled (for big ones), in an ArrayBuffer of exactly its size (never a view into
 * Node's shared pool): byteOffset 0, byteLength === buffer.byteLength.
 */
export function uninitialized(n: number): Uint8Array {
  if (n < 64 * 1024) return new Uint8Array(n); // zeroing is free at this size; the plain path allocates faster
  const b = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(b.buffer, b.byteOffset, n);
}

/** A payload in two parts: `fields` is the fields length + JSON, `body` the rest in a buffer of its own. */
export interface PayloadParts {
  fields: Uint8Array;
  body: Uint8Array;
}

/**
 * Fed a payload's bytes in order, in pieces of any size. The first 4 bytes say how long the JSON is; from then
 * on every byte has a known place: first the fields buffer, then the body buffer.
 */
export class PayloadAssembler {
  private readonly label: string;
  readonly payloadBytes: number;
  private readonly fieldsLength = new Uint8Array(FIELDS_LENGTH_BYTES);
  private fields: Uint8Array | undefined; // both allocated once the fields length is known
  private body: Uint8Array | undefined;
  private received = 0;

  /**
   * @param label names the frame in errors (its message type)
   * @throws NodeError E_PROTOCOL_PAYLOAD when the payload cannot even hold the fields length
   */
  constructor(label: string, payloadBytes: number) {
    if (payloadBytes < FIELDS_LENGTH_BYTES) {
      throw new NodeError(
        "E_PROTOCOL_PAYLOAD",
        `${label} payload of ${payloadBytes} bytes is shorter than its 4-byte fields length`,
      );
    }
    this.label = label;
    this.payloadBytes = payloadBytes;
  }

  /** True once all payloadBytes have been written. */
  get complete(): boolean {
    return this.received === this.payloadBytes;
  }

  /**
   * The next bytes of the payload, copied now (the caller may reuse them).
   * @throws NodeError E_PROTOCOL_PAYLOAD when the fields length runs past the payload (seen at its 4th byte);
   *   E_INTERNAL when written past the payload's end
   */
  write(bytes: Uint8Array): void {
    if (this.received + bytes.byteLength > this.payloadBytes) {
      throw new NodeError("E_INTERNAL", `${this.label} payload written past its ${this.payloadBytes} bytes`);
    }
    let at = 0;
    while (at < bytes.byteLength) {
      const { dst, offset } = this.place();
      const n = Math.min(dst.byteLength - offset, bytes.byteLength - at);
      dst.set(bytes.subarray(at, at + n), offset);
      at += n;
      this.received += n;
      if (this.received === FIELDS_LENGTH_BYTES) this.split();
    }
  }

  /**
   * Both parts, once complete.
   * @throws NodeError E_INTERNAL before then
   */
  parts(): PayloadParts {
    if (!this.complete || !this.fields || !this.body) {
      throw new NodeError(
        "E_INTERNAL",
        `${this.label} payload taken with ${this.received} of ${this.payloadBytes} bytes`,
      );
    }
    return { fields: this.fields, body: this.body };
  }

  /** Where the next byte goes: the buffer and the offset in it. */
  private place(): { dst: Uint8Array; offset: number } {
    if (!this.fields || !this.body) return { dst: this.fieldsLength, offset: this.received };
    if (this.received < this.fields.byteLength) return { dst: this.fields, offset: this.received };
    return { dst: this.body, offset: this.received - this.fields.byteLength };
  }

  /** The fields length is in: size both buffers. */
  private split(): void {
    const jsonBytes = new DataView(this.fieldsLength.buffer).getUint32(0);
    if (FIELDS_LENGTH_BYTES + jsonBytes > this.payloadBytes) {
      throw new NodeError(
        "E_PROTOCOL_PAYLOAD",
        `${this.label} fields length ${jsonBytes} runs past the ${this.payloadBytes}-byte payload`,
      );
    }
    this.fields = new Uint8Array(FIELDS_LENGTH_BYTES + jsonBytes);
    this.fields.set(this.fieldsLength);
    this.body = uninitialized(this.payloadBytes - FIELDS_LENGTH_BYTES - jsonBytes);
  }
}
