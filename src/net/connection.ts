// One TCP socket carrying frames: the write queue that honours Bun's partial writes and `drain`,
// and the streaming decoder. A framing error closes the socket with a logged reason.
import type { Socket } from "bun";
import { NodeError, isNodeError } from "../errors.ts";
import { logger } from "../log.ts";
import {
  FrameDecoder,
  decodePayload,
  encodeFrame,
  encodeFrameHead,
  type OutgoingMessage,
  type ReceiveBudget,
} from "../protocol/frame.ts";
import { FrameOpener, FrameSealer, type LazyBytes } from "../protocol/seal.ts";
import type { Message } from "../protocol/types.ts";

const log = logger("net");

/** What Bun keeps on each socket: the Connection that owns it, once opened. */
export interface SocketData {
  conn?: Connection;
}

export interface ConnectionOptions {
  direction: "in" | "out";
  maxFrameBytes: number;
  /** Shared by the node's links: bytes partly received big frames may hold (frame.ts). */
  budget?: ReceiveBudget;
  onMessage(msg: Message): void;
  onClose(reason: string): void;
  /** A frame that cannot be decoded or opened; return true when handled (the owner closed the link). */
  onBadFrame?(err: NodeError): boolean;
  /** Where the reason of a closing goes (default: a warning; the link rate-limits those before the handshake). */
  warn?(message: string): void;
}

let nextConnectionId = 1;

/** Bodies at least this large are sent from the caller's buffer (see write()); the caller keeps it unchanged until sent. */
export const ZERO_COPY_MIN_BYTES = 256 * 1024;

/** Owns one socket: whole-frame writes (rest sent on drain), decoding, and one close with a reason. */
export class Connection {
  readonly id = nextConnectionId++;
  readonly direction: "in" | "out";
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly openedAt = Date.now();
  framesIn = 0;
  framesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Set once closed: why. */
  closeReason: string | undefined;
  /** Shown in logs; the link renames it once the peer's id is known. */
  label: string;

  private readonly socket: Socket<SocketData>;
  private readonly decoder: FrameDecoder;
  private readonly opts: ConnectionOptions;
  /** Buffers to send, in order; a LazyBytes makes its bytes (a big sealed body) only once the socket has room. */
  private queue: (Uint8Array | LazyBytes)[] = [];
  private queueOffset = 0;
  private queued = 0;
  private flushWaiters: (() => void)[] = [];
  private sealer: FrameSealer | undefined;
  private opener: FrameOpener | undefined;
  /** While a keyed handshake runs, the peer may still refuse in plain text (it may hold another key). */
  plainErrorsAllowed = true;

  constructor(socket: Socket<SocketData>, opts: ConnectionOptions) {
    this.socket = socket;
    this.opts = opts;
    this.direction = opts.direction;
    this.decoder = new FrameDecoder({
      maxFrameBytes: opts.maxFrameBytes,
      budget: opts.budget,
      // A big sealed frame is decrypted as it arrives, into its own buffer: its ciphertext is never assembled.
      sinkFor: (type, n) => (type === "SEALED" && this.opener ? this.opener.openStream(n) : undefined),
    });
    this.localPort = socket.localPort;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    this.label = `${opts.direction === "out" ? "to" : "from"} ${this.remoteAddress}:${this.remotePort}`;
    socket.data = { conn: this };
    socket.setNoDelay(true);
  }

  get closed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Bytes accepted by write() but not yet taken by the kernel. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** True once frames are sealed both ways (after a keyed handshake). */
  get sealed(): boolean {
    return this.sealer !== undefined;
  }

  /** From now on every frame sent is sealed with `send`, and every frame received must be sealed with `receive`. */
  startSealing(keys: { send: Uint8Array; receive: Uint8Array }): void {
    this.sealer = new FrameSealer(keys.send);
    this.opener = new FrameOpener(keys.receive);
  }

  /**
   * Encode (and seal, on a keyed link) one frame and send it; what the socket does not take now goes out on
   * drain, in order. `plain` sends it unsealed even then (a refusal the peer may not be able to open).
   * @throws NodeError E_PEER_DOWN when closed, E_FRAME_TOO_LARGE for an oversized frame
   */
  write(msg: OutgoingMessage, opts: { plain?: boolean } = {}): void {
    if (this.closed) throw new NodeError("E_PEER_DOWN", `link ${this.label} is closed (${this.closeReason})`);
    const body = msg.body;
    // A large body is queued as it is, right behind its header: no other frame can come between them, and
    // copying 16 MiB of hidden states into a fresh buffer cost more than sending them (bench/net.ts).
    const parts =
      this.sealer && !opts.plain
        ? this.sealer.seal(msg, this.opts.maxFrameBytes)
        : body && body.byteLength >= ZERO_COPY_MIN_BYTES
          ? [encodeFrameHead(msg, this.opts.maxFrameBytes), body]
          : [encodeFrame(msg, this.opts.maxFrameBytes)];
    const wasIdle = this.queue.length === 0;
    for (const part of parts) {
      this.queue.push(part);
      this.queued += part.byteLength;
      this.bytesOut += part.byteLength;
    }
    this.framesOut++;
    if (wasIdle) this.flush();
  }

  /** Resolves once everything written so far was handed to the kernel (or the connection closed). */
  flushed(): Promise<void> {
    if (this.queued === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  /** Lower the frame size limit (e.g. before the handshake) or raise it back. */
  setMaxFrameBytes(n: number): void {
    this.decoder.setMaxFrameBytes(n);
  }

  /** Close once, with a reason that the owner's onClose receives. */
  close(reason: string): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.queue = [];
    this.queued = 0;
    this.decoder.close();
    this.releaseFlushWaiters();
    this.socket.end();
    this.opts.onClose(reason);
  }

  /** Socket `drain`: the kernel has room again. */
  handleDrain(): void {
    this.flush();
  }

  /** Socket `data`: decode and deliver whole frames; a framing error tells the peer why, then closes. */
  handleData(chunk: Uint8Array): void {
    if (this.closed) return;
    this.bytesIn += chunk.byteLength;
    try {
      // Each frame is decoded and delivered before the next header is read: delivering one (AUTH) may start
      // sealing for the next.
      this.decoder.pushRaw(chunk, (f) => {
        if (this.closed) return;
        const msg = f.message ?? this.decode(f.type, f.payload, f.body);
        this.framesIn++;
        this.opts.onMessage(msg);
      });
    } catch (err) {
      if (!this.closed) this.badFrame(err);
    }
  }

  /** A framing or sealing error: tell the peer why (unless the owner handles it), log, close. */
  private badFrame(err: unknown): void {
    this.decoder.close();
    if (isNodeError(err) && this.opts.onBadFrame?.(err)) return;
    const reason = isNodeError(err) ? `${err.code}: ${err.message}` : String(err);
    (this.opts.warn ?? ((m: string) => log.warn(m)))(`closing link ${this.label}: ${reason}`);
    try {
      this.write({ type: "ERROR", fields: { code: isNodeError(err) ? err.code : "E_INTERNAL", message: reason } });
    } catch {
      // the socket may already refuse writes; the close below is what matters
    }
    this.close(reason);
  }

  /** Socket `close`/`error`: the peer or the network ended it. */
  handleClosed(reason: string): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.queue = [];
    this.queued = 0;
    this.decoder.close();
    this.releaseFlushWaiters();
    this.opts.onClose(reason);
  }

  /**
   * A raw frame → its message: sealed ones are opened; on a keyed link plain ones are refused (but refusals).
   * A big plain frame arrives with its body already split off, in a buffer of its own: passed on as it is.
   */
  private decode(type: Message["type"], payload: Uint8Array, body?: Uint8Array): Message {
    if (type === "SEALED") {
      if (!this.opener) throw new NodeError("E_PROTOCOL_SEAL", "a sealed frame on a link without a cluster key");
      return this.opener.open(payload);
    }
    if (this.opener && !(type === "ERROR" && this.plainErrorsAllowed))
      throw new NodeError("E_PROTOCOL_SEAL", `a plain ${type} frame on a sealed link`);
    return decodePayload(type, payload, body);
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      if (!(head instanceof Uint8Array)) {
        // Make the next piece now that the socket has room: encrypting overlaps with the peer reading the last one.
        const piece = head.next();
        if (piece) this.queue.unshift(piece);
        else this.queue.shift();
        continue;
      }
      const left = head.byteLength - this.queueOffset;
      const n = this.socket.write(head, this.queueOffset, left);
      if (n < 0) {
        this.handleClosed("socket refused the write (closed)");
        return;
      }
      this.queued -= n;
      if (n < left) {
        this.queueOffset += n;
        this.sealAhead();
        return; // the kernel buffer is full: `drain` calls flush again
      }
      this.queue.shift();
      this.queueOffset = 0;
    }
    this.releaseFlushWaiters();
  }

  /** While the kernel drains, encrypt the next piece of a big sealed body (one ahead), so it is ready on drain. */
  private sealAhead(): void {
    const next = this.queue[1];
    if (next === undefined || next instanceof Uint8Array) return;
    const piece = next.next();
    if (piece) this.queue.splice(1, 0, piece);
    else this.queue.splice(1, 1);
  }

  private releaseFlushWaiters(): void {
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const w of waiters) w();
  }
}
