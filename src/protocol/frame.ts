// The frame codec: encodeFrame(msg) → bytes, and FrameDecoder, a state machine fed arbitrary chunks.
// Pure: no sockets, timers or logging. Layout in src/protocol/README.md.
import { NodeError } from "../errors.ts";
import { PROTOCOL_VERSION } from "../version.ts";
import { PayloadAssembler, uninitialized } from "./payload-assembler.ts";
import { decodeTensor, hasTensor } from "./tensor.ts";
import { MESSAGE_TYPES, type Message, type MessageTypeName } from "./types.ts";

/** "EXO" followed by the protocol version byte. */
export const MAGIC = Uint8Array.of(0x45, 0x58, 0x4f, PROTOCOL_VERSION);
/** Magic (4) + type (1) + payload length (4). */
export const HEADER_BYTES = 9;
/** Default ceiling on a frame's payload length; a larger length is refused before allocating. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;
const FIELDS_LENGTH_BYTES = 4;
/** Payloads at least this large are copied into place as their chunks arrive (see FrameDecoder.fillLarge). */
const STREAMED_PAYLOAD_BYTES = 1024 * 1024;

const TYPE_NAMES: (MessageTypeName | undefined)[] = [];
for (const [name, code] of Object.entries(MESSAGE_TYPES)) TYPE_NAMES[code] = name as MessageTypeName;

/** What a sender provides; `fields` defaults to {} and `body` to empty. */
export interface OutgoingMessage {
  type: MessageTypeName;
  fields?: Record<string, unknown>;
  body?: Uint8Array;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * One whole frame (header + JSON fields + body) in a single buffer, ready for one socket write.
 * @throws NodeError E_FRAME_TOO_LARGE when the payload exceeds `maxFrameBytes`.
 */
export function encodeFrame(msg: OutgoingMessage, maxFrameBytes: number = MAX_FRAME_BYTES): Uint8Array {
  const body = msg.body ?? new Uint8Array(0);
  const head = encodeFrameHead(msg, maxFrameBytes, body.byteLength);
  const frame = uninitialized(head.byteLength + body.byteLength);
  frame.set(head, 0);
  frame.set(body, head.byteLength);
  return frame;
}

/**
 * The frame without its body: header + fields length + JSON. Sent immediately followed by `msg.body`,
 * it is byte for byte the frame of encodeFrame, without copying a large body.
 * @throws NodeError E_FRAME_TOO_LARGE when the payload exceeds `maxFrameBytes`.
 */
export function encodeFrameHead(
  msg: OutgoingMessage,
  maxFrameBytes: number = MAX_FRAME_BYTES,
  bodyBytes = msg.body?.byteLength ?? 0,
): Uint8Array {
  const json = utf8.encode(JSON.stringify(msg.fields ?? {}));
  const payloadBytes = FIELDS_LENGTH_BYTES + json.byteLength + bodyBytes;
  if (payloadBytes > maxFrameBytes || payloadBytes > 0xffffffff) {
    throw new NodeError(
      "E_FRAME_TOO_LARGE",
      `${msg.type} frame payload of ${payloadBytes} bytes exceeds the maximum of ${maxFrameBytes}`,
    );
  }
  const head = new Uint8Array(HEADER_BYTES + FIELDS_LENGTH_BYTES + json.byteLength);
  const view = new DataView(head.buffer);
  head.set(MAGIC, 0);
  head[4] = MESSAGE_TYPES[msg.type];
  view.setUint32(5, payloadBytes);
  view.setUint32(HEADER_BYTES, json.byteLength);
  head.set(json, HEADER_BYTES + FIELDS_LENGTH_BYTES);
  return head;
}

/**
 * Split a payload into JSON fields and body; a body described as a tensor must match its shape × dtype.
 * With `body` (already split off, e.g. by a PayloadAssembler) `payload` is the fields part only: fields length
 * and JSON; the body is then returned as it is, without a copy.
 * @throws NodeError E_PROTOCOL_PAYLOAD
 */
export function decodePayload(type: MessageTypeName, payload: Uint8Array, body?: Uint8Array): Message {
  if (payload.byteLength < FIELDS_LENGTH_BYTES) {
    throw new NodeError(
      "E_PROTOCOL_PAYLOAD",
      `${type} payload of ${payload.byteLength} bytes is shorter than its 4-byte fields length`,
    );
  }
  const jsonBytes = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
  const fieldsEnd = FIELDS_LENGTH_BYTES + jsonBytes;
  if (fieldsEnd > payload.byteLength) {
    throw new NodeError(
      "E_PROTOCOL_PAYLOAD",
      `${type} fields length ${jsonBytes} runs past the ${payload.byteLength}-byte payload`,
    );
  }
  if (body && fieldsEnd !== payload.byteLength) {
    throw new NodeError("E_INTERNAL", `${type} fields part has ${payload.byteLength - fieldsEnd} bytes after its JSON`);
  }
  let fields: unknown;
  try {
    fields = JSON.parse(strictUtf8.decode(payload.subarray(FIELDS_LENGTH_BYTES, fieldsEnd)));
  } catch (err) {
    throw new NodeError("E_PROTOCOL_PAYLOAD", `${type} fields are not valid UTF-8 JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    throw new NodeError("E_PROTOCOL_PAYLOAD", `${type} fields must be a JSON object`);
  }
  const record = fields as Record<string, unknown>;
  const bodyBytes = body ?? payload.subarray(fieldsEnd);
  if (hasTensor(record)) decodeTensor(record, bodyBytes);
  return { type, fields: record, body: bodyBytes };
}

/**
 * A frame as it arrived: its type and undecoded payload, or the message a PayloadSink already made of it. A big
 * plain frame comes split: `payload` is its fields part, `body` the rest in a buffer of its own.
 */
export interface RawFrame {
  type: MessageTypeName;
  payload: Uint8Array;
  body?: Uint8Array;
  message?: Message;
}

/** Takes a big payload piece by piece as it arrives (a sealed frame is decrypted on the way in), then yields it. */
export interface PayloadSink {
  /** The next bytes of the payload (views of received chunks: use them now, keep none). */
  write(bytes: Uint8Array): void;
  /** All bytes are in: the message. */
  finish(): Message;
}

/**
 * Bytes that partly received big frames may hold, shared by every decoder of a process: without it, ten links
 * each announcing a 250 MiB frame would reserve gigabytes. A refused reservation fails that stream only.
 */
export interface ReceiveBudget {
  reserve(bytes: number): boolean;
  release(bytes: number): void;
  /** "N of M bytes", for the refusal message. */
  describe(): string;
}

export interface DecoderOptions {
  maxFrameBytes?: number;
  budget?: ReceiveBudget;
  /** A sink for a big payload of this type, instead of assembling it into one buffer (undefined: assemble). */
  sinkFor?(type: MessageTypeName, payloadBytes: number): PayloadSink | undefined;
}

/** Where the decoder is in the current frame (a literal union, not an enum: STYLE §3). */
type DecoderState = "header" | "payload";

/**
 * Streaming decoder: push() any chunk, get back the messages it completes. The header is checked
 * byte by byte as it arrives, so garbage is refused early. After a throw the decoder stays failed
 * (the stream has lost its framing); messages earlier in the same chunk are dropped with it.
 */
export class FrameDecoder {
  private maxFrameBytes: number;
  private chunks: Uint8Array[] = [];
  private offset = 0; // read position inside chunks[0]
  private buffered = 0;
  private state: DecoderState = "header";
  private type: MessageTypeName = "HELLO";
  private payloadBytes = 0;
  private failure: NodeError | undefined;
  // A big payload in progress goes to exactly one of these as its chunks arrive:
  private assembler: PayloadAssembler | undefined; // split into fields and body (plain frames)
  private sink: PayloadSink | undefined; // handed to a sink (a sealed frame the link opens on the way in)
  private large: Uint8Array | undefined; // or kept whole (a sealed frame with no sink: ciphertext, not split)
  private largeFilled = 0;
  private reserved = 0; // budget bytes held for the big payload in progress

  private readonly opts: DecoderOptions;

  constructor(opts: DecoderOptions = {}) {
    this.opts = opts;
    this.maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES;
  }

  /** Change the payload limit for frames whose header has not been read yet. */
  setMaxFrameBytes(n: number): void {
    this.maxFrameBytes = n;
  }

  /** Bytes received but not yet returned as messages. */
  get bufferedBytes(): number {
    return this.buffered + (this.state === "payload" ? HEADER_BYTES + this.largeFilled : 0);
  }

  /**
   * Feed bytes; returns the messages completed by them, in order.
   * @throws NodeError E_PROTOCOL_MAGIC, E_PROTOCOL_VERSION, E_PROTOCOL_TYPE, E_FRAME_TOO_LARGE, E_PROTOCOL_PAYLOAD
   */
  push(chunk: Uint8Array): Message[] {
    const frames = this.pushRaw(chunk);
    try {
      return frames.map((f) => f.message ?? decodePayload(f.type, f.payload, f.body));
    } catch (err) {
      this.fail(err as NodeError);
      throw err;
    }
  }

  /**
   * Feed bytes; returns the frames completed by them with their payloads undecoded (a sealed frame's payload
   * is ciphertext: the link opens it, then decodes the frame inside). With `onFrame` each frame is handed over
   * as soon as it is complete, before the next header is read (so handling one may change how the next is read),
   * and nothing is returned.
   * @throws NodeError E_PROTOCOL_MAGIC, E_PROTOCOL_VERSION, E_PROTOCOL_TYPE, E_FRAME_TOO_LARGE, E_PROTOCOL_PAYLOAD
   *   (a big frame's fields length runs past its payload); whatever a sink or `onFrame` throws (the decoder then
   *   stays failed)
   */
  pushRaw(chunk: Uint8Array, onFrame?: (frame: RawFrame) => void): RawFrame[] {
    if (this.failure) throw this.failure;
    const out: RawFrame[] = [];
    if (chunk.byteLength === 0) return out;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    try {
      for (;;) {
        if (this.state === "header") {
          this.checkHeaderPrefix();
          if (this.buffered < HEADER_BYTES) break;
          const header = this.take(HEADER_BYTES);
          this.payloadBytes = new DataView(header.buffer, header.byteOffset, HEADER_BYTES).getUint32(5);
          if (this.payloadBytes > this.maxFrameBytes) {
            throw new NodeError(
              "E_FRAME_TOO_LARGE",
              `${this.type} frame announces ${this.payloadBytes} bytes, above the maximum of ${this.maxFrameBytes}`,
            );
          }
          this.state = "payload";
        }
        // A big payload gets its buffer only once a megabyte of it has really arrived: a header alone costs nothing.
        const streamed =
          this.payloadBytes >= STREAMED_PAYLOAD_BYTES && (this.reserved > 0 || this.buffered >= STREAMED_PAYLOAD_BYTES);
        let frame: RawFrame | undefined;
        if (streamed) frame = this.fillLarge();
        else if (this.buffered >= this.payloadBytes) frame = { type: this.type, payload: this.take(this.payloadBytes) };
        if (!frame) break;
        this.state = "header";
        if (onFrame) onFrame(frame);
        else out.push(frame);
        if (this.failure) break; // closed by onFrame
      }
    } catch (err) {
      this.fail(err as NodeError);
      throw err;
    }
    return out;
  }

  /** The stream ended (connection closed): give back what a partly received frame holds; later pushes throw. */
  close(): void {
    this.failure ??= new NodeError("E_PEER_DOWN", "the frame stream was closed");
    this.dropLarge();
    this.chunks = [];
    this.buffered = 0;
  }

  private fail(err: NodeError): void {
    this.failure = err;
    this.close();
    this.state = "header";
  }

  private dropLarge(): void {
    if (this.reserved > 0) this.opts.budget?.release(this.reserved);
    this.reserved = 0;
    this.assembler = undefined;
    this.large = undefined;
    this.sink = undefined;
    this.largeFilled = 0;
  }

  /** Validate magic, version and type with however many header bytes have arrived. */
  private checkHeaderPrefix(): void {
    const n = Math.min(this.buffered, 5);
    for (let i = 0; i < n; i++) {
      const b = this.peek(i);
      if (i < 3 && b !== MAGIC[i]) {
        throw new NodeError(
          "E_PROTOCOL_MAGIC",
          `bad frame magic: byte ${i} is 0x${b.toString(16).padStart(2, "0")}, expected "EXO"`,
        );
      }
      if (i === 3 && b !== PROTOCOL_VERSION) {
        throw new NodeError(
          "E_PROTOCOL_VERSION",
          `frame uses protocol version ${b}, this node speaks version ${PROTOCOL_VERSION}`,
        );
      }
      if (i === 4) {
        const name = TYPE_NAMES[b];
        if (name === undefined) throw new NodeError("E_PROTOCOL_TYPE", `unknown message type ${b}`);
        this.type = name;
      }
    }
  }

  private peek(i: number): number {
    let pos = this.offset + i;
    for (const c of this.chunks) {
      if (pos < c.byteLength) return c[pos]!;
      pos -= c.byteLength;
    }
    throw new NodeError("E_INTERNAL", "frame decoder peeked past its buffer");
  }

  /**
   * Copy what has arrived of a big payload into place right away (the chunks are still in cache and are freed
   * at once): a plain one split into fields and body, each in a buffer of its own (the body then reaches the
   * tensor code with no further copy). The buffers are not zero-filled, so an announced length costs no memory
   * until it arrives. Returns the frame once complete.
   */
  private fillLarge(): RawFrame | undefined {
    if (this.reserved === 0) {
      if (this.opts.budget && !this.opts.budget.reserve(this.payloadBytes)) {
        throw new NodeError(
          "E_FRAME_TOO_LARGE",
          `${this.type} frame of ${this.payloadBytes} bytes refused: partly received frames across all links already hold ${this.opts.budget.describe()}`,
        );
      }
      this.reserved = this.payloadBytes;
      this.sink = this.opts.sinkFor?.(this.type, this.payloadBytes);
      // Without a sink, ciphertext (a sealed frame) is kept whole and a plain payload split into fields and body.
      if (!this.sink && this.type === "SEALED") this.large = uninitialized(this.payloadBytes);
      else if (!this.sink) this.assembler = new PayloadAssembler(this.type, this.payloadBytes);
    }
    const n = Math.min(this.buffered, this.payloadBytes - this.largeFilled);
    if (this.large) this.copyOut(this.large, this.largeFilled, n);
    else this.feed(this.sink ?? this.assembler!, n);
    this.largeFilled += n;
    if (this.largeFilled < this.payloadBytes) return undefined;
    let frame: RawFrame;
    if (this.sink) frame = { type: this.type, payload: new Uint8Array(0), message: this.sink.finish() };
    else if (this.assembler) {
      const { fields, body } = this.assembler.parts();
      frame = { type: this.type, payload: fields, body };
    } else frame = { type: this.type, payload: this.large! };
    this.dropLarge();
    return frame;
  }

  /** Hand n buffered bytes to a sink or assembler, as views of the chunks they sit in. */
  private feed(sink: Pick<PayloadSink, "write">, n: number): void {
    let fed = 0;
    while (fed < n) {
      const c = this.chunks[0]!;
      const part = Math.min(c.byteLength - this.offset, n - fed);
      sink.write(c.subarray(this.offset, this.offset + part));
      fed += part;
      this.offset += part;
      this.buffered -= part;
      if (this.offset === c.byteLength) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
  }

  /** Move n buffered bytes into dst at offset. */
  private copyOut(dst: Uint8Array, offset: number, n: number): void {
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const part = Math.min(c.byteLength - this.offset, n - filled);
      dst.set(c.subarray(this.offset, this.offset + part), offset + filled);
      filled += part;
      this.offset += part;
      if (this.offset === c.byteLength) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    this.buffered -= n;
  }

  /** Remove n buffered bytes: a view when they sit in one chunk, else one copy. */
  private take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[0]!;
    let out: Uint8Array;
    if (first.byteLength - this.offset >= n) {
      out = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      this.buffered -= n;
      if (this.offset === first.byteLength) {
        this.chunks.shift();
        this.offset = 0;
      }
    } else {
      out = uninitialized(n); // filled completely by copyOut
      this.copyOut(out, 0, n);
    }
    return out;
  }
}
