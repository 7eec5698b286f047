// A link: a Connection after the HELLO handshake, with requests and answers matched by `id`.
// The dialer numbers its requests odd and the acceptor even (as HTTP/2 streams do), so both
// sides can send requests on one link and an incoming `id` tells a request from an answer.
import type { Socket } from "bun";
import { NodeError, type ErrorCode } from "../errors.ts";
import { logger } from "../log.ts";
import { PendingCalls } from "../pending-calls.ts";
import type { Message, MessageTypeName } from "../protocol/types.ts";
import type { Reply } from "./transport.ts";
import { Connection, type SocketData } from "./connection.ts";
import { encodeHello, parseHello, type Hello } from "./hello.ts";

const log = logger("net");

/** Frames before the handshake are small; a stranger cannot make us buffer a huge one. */
const PRE_HANDSHAKE_MAX_BYTES = 64 * 1024;

export interface LinkOptions {
  direction: "in" | "out";
  /** What this node says in its HELLO. */
  hello: Hello;
  /** Dialer only: the node id expected at the other end (the acceptor refuses if it is someone else). */
  expect?: string;
  /** Membership check on the peer's HELLO: a returned string refuses the link with that reason. */
  admit?(peer: Hello): string | undefined;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  /** A request (has `id`, expects answer()) or one-way message from the peer, after the handshake. */
  onMessage(link: Link, msg: Message): void;
  onReady?(link: Link): void;
  onClose(link: Link, reason: string): void;
}

/** One handshaken connection to a peer (or a probe): requests with deadlines, answers, one-way messages. */
export class Link {
  readonly conn: Connection;
  /** The peer's HELLO, once the handshake is done. */
  peer: Hello | undefined;
  /** Resolves with the peer's HELLO; rejects with E_HANDSHAKE / E_PEER_DOWN. */
  readonly ready: Promise<Hello>;
  /** Requests sent on this link so far. */
  requestsSent = 0;

  private readonly opts: LinkOptions;
  private readonly pending = new PendingCalls<number, Message>();
  private nextId: number;
  private settle!: { resolve(h: Hello): void; reject(e: NodeError): void };
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(socket: Socket<SocketData>, opts: LinkOptions) {
    this.opts = opts;
    this.nextId = opts.direction === "out" ? 1 : 2;
    this.ready = new Promise<Hello>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ready.catch(() => {}); // callers that never await it must not see an unhandled rejection
    this.conn = new Connection(socket, {
      direction: opts.direction,
      maxFrameBytes: opts.maxFrameBytes,
      onMessage: (msg) => this.dispatch(msg),
      onClose: (reason) => this.closed(reason),
    });
    this.conn.setMaxFrameBytes(Math.min(PRE_HANDSHAKE_MAX_BYTES, opts.maxFrameBytes));
    this.handshakeTimer = setTimeout(
      () => this.violation("E_HANDSHAKE", `no HELLO within ${opts.handshakeTimeoutMs} ms`),
      opts.handshakeTimeoutMs,
    );
    // The dialer speaks first and names whom it expects; the acceptor answers only once it admits the dialer,
    // so a refused dialer never sees the link as up.
    if (opts.direction === "out") this.conn.write({ type: "HELLO", fields: encodeHello(opts.hello, opts.expect) });
  }

  get isReady(): boolean {
    return this.peer !== undefined && !this.conn.closed;
  }

  /**
   * Send a request and wait for the answer carrying its id.
   * @throws NodeError E_PEER_TIMEOUT after timeoutMs, E_PEER_DOWN if the link closes, the remote code for an ERROR answer
   */
  request(
    type: MessageTypeName,
    fields: Record<string, unknown> = {},
    body: Uint8Array | undefined,
    timeoutMs: number,
  ): Promise<Message> {
    const id = this.nextId;
    this.nextId += 2;
    const answer = this.pending.add(id, {
      timeoutMs,
      onTimeout: () => new NodeError("E_PEER_TIMEOUT", `${type} to ${this.name} got no answer within ${timeoutMs} ms`),
    });
    try {
      this.conn.write({ type, fields: { ...fields, id }, body });
      this.requestsSent++;
    } catch (err) {
      this.pending.reject(id, err as Error);
    }
    return answer;
  }

  /** One-way message. @throws NodeError E_PEER_DOWN when the link is closed */
  send(type: MessageTypeName, fields: Record<string, unknown> = {}, body?: Uint8Array): void {
    this.conn.write({ type, fields, body });
  }

  /** Answer a request received on this link. Silently dropped if the link closed meanwhile. */
  answer(id: number, reply: Reply): void {
    if (this.conn.closed) return;
    this.conn.write({ type: reply.type, fields: { ...reply.fields, id }, body: reply.body });
  }

  close(reason: string): void {
    this.conn.close(reason);
  }

  /** The peer broke the protocol: log why, tell it, close. */
  private violation(code: ErrorCode, reason: string): void {
    if (this.conn.closed) return;
    log.warn(`closing link ${this.conn.label}: ${code}: ${reason}`);
    this.conn.write({ type: "ERROR", fields: { code, message: reason } });
    this.close(`${code}: ${reason}`);
  }

  /** The peer's node id once known, else its address. */
  get name(): string {
    return this.peer?.nodeId ?? this.conn.label;
  }

  private dispatch(msg: Message): void {
    if (!this.peer) return this.handshake(msg);
    const id = msg.fields.id;
    if (id !== undefined && (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0)) {
      return this.violation(
        "E_PROTOCOL_PAYLOAD",
        `${msg.type} from ${this.name} carries an invalid id ${JSON.stringify(id)}`,
      );
    }
    if (typeof id === "number" && id % 2 === this.nextId % 2) return this.resolveAnswer(id, msg);
    if (msg.type === "HELLO") return this.violation("E_HANDSHAKE", `${this.name} sent a second HELLO`);
    if (msg.type === "ERROR" && id === undefined) {
      log.warn(`${this.name} reports: ${String(msg.fields.code)}: ${String(msg.fields.message)}`);
      return;
    }
    this.opts.onMessage(this, msg);
  }

  private handshake(msg: Message): void {
    if (msg.type === "ERROR") {
      const reason = `${this.conn.label} refused the handshake: ${String(msg.fields.message)}`;
      log.warn(reason);
      this.settle.reject(new NodeError("E_HANDSHAKE", reason));
      return this.close(reason);
    }
    if (msg.type !== "HELLO") return this.violation("E_HANDSHAKE", `${this.conn.label} sent ${msg.type} before HELLO`);
    let peer: Hello;
    try {
      peer = parseHello(msg.fields, this.opts.hello);
      const expected = msg.fields.to;
      if (this.opts.direction === "in" && typeof expected === "string" && expected !== this.opts.hello.nodeId) {
        throw new NodeError(
          "E_HANDSHAKE",
          `this is node ${this.opts.hello.nodeId}, not ${expected}: check the peer file's address for ${expected}`,
        );
      }
      const refusal = this.opts.admit?.(peer);
      if (refusal) throw new NodeError("E_HANDSHAKE", refusal);
    } catch (err) {
      const e = err as NodeError;
      log.warn(`refusing link ${this.conn.label}: ${e.message}`);
      this.conn.write({ type: "ERROR", fields: { code: "E_HANDSHAKE", message: e.message } });
      this.settle.reject(new NodeError("E_HANDSHAKE", `refused ${this.conn.label}: ${e.message}`));
      return this.close(`handshake refused: ${e.message}`);
    }
    clearTimeout(this.handshakeTimer);
    if (this.opts.direction === "in") this.conn.write({ type: "HELLO", fields: encodeHello(this.opts.hello) });
    this.peer = peer;
    this.conn.label = `${peer.nodeId} (${this.opts.direction === "out" ? "dialled" : "accepted"} ${this.conn.remoteAddress}:${this.conn.remotePort})`;
    this.conn.setMaxFrameBytes(this.opts.maxFrameBytes);
    this.settle.resolve(peer);
    this.opts.onReady?.(this);
  }

  private resolveAnswer(id: number, msg: Message): void {
    if (!this.pending.has(id)) {
      log.debug(`late or unknown answer ${msg.type} id ${id} from ${this.name}`);
      return;
    }
    if (msg.type === "ERROR") {
      const code = (typeof msg.fields.code === "string" ? msg.fields.code : "E_INTERNAL") as ErrorCode;
      this.pending.reject(id, new NodeError(code, `${this.name}: ${String(msg.fields.message ?? "error")}`));
    } else {
      this.pending.resolve(id, msg);
    }
  }

  private closed(reason: string): void {
    clearTimeout(this.handshakeTimer);
    const err = new NodeError("E_PEER_DOWN", `link ${this.conn.label} closed: ${reason}`);
    this.settle.reject(err);
    this.pending.rejectAll(err);
    this.opts.onClose(this, reason);
  }
}
