// A link: a Connection after the HELLO handshake, with requests and answers matched by `id`.
// The dialer numbers its requests odd and the acceptor even (as HTTP/2 streams do), so both
// sides can send requests on one link and an incoming `id` tells a request from an answer.
import type { Socket } from "bun";
import { NodeError, type ErrorCode } from "../errors.ts";
import { logger } from "../log.ts";
import { PendingCalls } from "../pending-calls.ts";
import type { ReceiveBudget } from "../protocol/frame.ts";
import type { Message, MessageTypeName } from "../protocol/types.ts";
import type { Reply } from "./transport.ts";
import { BulkLane } from "./bulk-lane.ts";
import { Connection, type SocketData } from "./connection.ts";
import {
  checkHelloProof,
  createAuthOffer,
  deriveLinkKeys,
  encodeAuth,
  helloProof,
  parseAuth,
  type AuthOffer,
  type LinkKeys,
} from "./handshake.ts";
import { encodeHello, parseHello, type Hello } from "./hello.ts";

const log = logger("net");

/** Frames before the handshake are small; a stranger cannot make us buffer a huge one. */
const PRE_HANDSHAKE_MAX_BYTES = 64 * 1024;

/** How to fix a key mismatch; part of every `cluster keys differ` refusal. */
export const CLUSTER_KEY_FIX =
  "give every node (and exo doctor) the same cluster key: `cluster_key` in the peer file, EXO_CLUSTER_KEY or --cluster-key-file (exo keygen makes one)";

export interface LinkOptions {
  direction: "in" | "out";
  /** What this node says in its HELLO. */
  hello: Hello;
  /** Dialer only: the node id expected at the other end (the acceptor refuses if it is someone else). */
  expect?: string;
  /** Membership check on the peer's HELLO (and where it came from): a returned string refuses the link. */
  admit?(peer: Hello, remoteAddress: string): string | undefined;
  /** The cluster key: with it the handshake is authenticated and every frame after it sealed. */
  clusterKey?: Uint8Array;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  budget?: ReceiveBudget;
  /** Where failures before the handshake completes are logged (the pool rate-limits a flood); default a warning. */
  warnUnauthenticated?(message: string, code: ErrorCode): void;
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
  private offer: AuthOffer | undefined;
  private keys: LinkKeys | undefined;
  /** Bulk answers (file bytes) wait here until the connection is idle: inference frames go first. */
  readonly bulk: BulkLane;

  constructor(socket: Socket<SocketData>, opts: LinkOptions) {
    this.opts = opts;
    this.nextId = opts.direction === "out" ? 1 : 2;
    this.ready = new Promise<Hello>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ready.catch(() => {}); // callers that never await it must not see an unhandled rejection
    this.conn = new Connection(socket, {
      direction: opts.direction,
      maxFrameBytes: opts.maxFrameBytes,
      budget: opts.budget,
      onMessage: (msg) => this.dispatch(msg),
      onClose: (reason) => this.closed(reason),
      onBadFrame: (err) => this.badFrame(err),
      warn: (m) => this.warn(m, "E_PROTOCOL_PAYLOAD"),
    });
    this.bulk = new BulkLane(this.conn);
    this.conn.setMaxFrameBytes(Math.min(PRE_HANDSHAKE_MAX_BYTES, opts.maxFrameBytes));
    this.handshakeTimer = setTimeout(
      () => this.violation("E_HANDSHAKE", `no HELLO within ${opts.handshakeTimeoutMs} ms`),
      opts.handshakeTimeoutMs,
    );
    // The dialer speaks first and names whom it expects; the acceptor answers only once it admits the dialer,
    // so a refused dialer never sees the link as up. With a key the dialer first offers AUTH (nothing about it).
    if (opts.direction === "out") {
      if (opts.clusterKey) {
        this.offer = createAuthOffer();
        this.conn.write({ type: "AUTH", fields: encodeAuth(this.offer) });
      } else this.conn.write({ type: "HELLO", fields: encodeHello(opts.hello, opts.expect) });
    }
  }

  /** True when this link's frames are sealed (a keyed handshake). */
  get sealed(): boolean {
    return this.conn.sealed;
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
    const msg = { type: reply.type, fields: { ...reply.fields, id }, body: reply.body };
    if (reply.bulk) this.bulk.push(msg);
    else this.conn.write(msg);
  }

  close(reason: string): void {
    this.conn.close(reason);
  }

  /** The peer broke the protocol: log why, tell it, close. */
  private violation(code: ErrorCode, reason: string): void {
    if (this.conn.closed) return;
    this.warn(`closing link ${this.conn.label}: ${code}: ${reason}`, code);
    this.conn.write({ type: "ERROR", fields: { code, message: reason } });
    this.close(`${code}: ${reason}`);
  }

  /** Before the handshake, through the pool's rate limit; after it, a plain warning. */
  private warn(message: string, code: ErrorCode): void {
    if (!this.peer && this.opts.warnUnauthenticated) this.opts.warnUnauthenticated(message, code);
    else log.warn(message);
  }

  /** A sealed frame that does not open during the handshake: the two sides hold different keys. */
  private badFrame(err: NodeError): boolean {
    if (this.peer || !this.keys || err.code !== "E_PROTOCOL_SEAL") return false;
    this.refuse(`cluster keys differ: a sealed frame from ${this.conn.label} does not open with this node's key`, {
      plain: true,
    });
    return true;
  }

  /** Refuse the handshake: log, tell the peer why (sealed once keys are agreed, unless `plain`), close. */
  private refuse(reason: string, opts: { plain?: boolean } = {}): void {
    if (this.conn.closed) return;
    const message = reason.startsWith("cluster keys differ") ? `${reason}: ${CLUSTER_KEY_FIX}` : reason;
    this.warn(`refusing link ${this.conn.label}: ${message}`, "E_HANDSHAKE");
    this.conn.write({ type: "ERROR", fields: { code: "E_HANDSHAKE", message } }, opts);
    this.settle.reject(new NodeError("E_HANDSHAKE", `refused ${this.conn.label}: ${message}`));
    this.close(`handshake refused: ${message}`);
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
      this.warn(reason, "E_HANDSHAKE");
      this.settle.reject(new NodeError("E_HANDSHAKE", reason));
      return this.close(reason);
    }
    const key = this.opts.clusterKey;
    if (!key) {
      if (msg.type === "AUTH")
        return this.refuse("cluster keys differ: the peer has a cluster key, this node has none", { plain: true });
      if (msg.type !== "HELLO")
        return this.violation("E_HANDSHAKE", `${this.conn.label} sent ${msg.type} before HELLO`);
      return this.acceptHello(msg);
    }
    if (!this.keys) {
      if (msg.type === "HELLO")
        return this.refuse("cluster keys differ: this node has a cluster key, the peer has none", { plain: true });
      if (msg.type !== "AUTH") return this.violation("E_HANDSHAKE", `${this.conn.label} sent ${msg.type} before AUTH`);
      const out = this.opts.direction === "out";
      try {
        const theirs = parseAuth(msg.fields);
        this.offer ??= createAuthOffer();
        if (!out) this.conn.write({ type: "AUTH", fields: encodeAuth(this.offer) });
        this.keys = deriveLinkKeys(out ? "dialer" : "acceptor", key, this.offer, theirs);
      } catch (err) {
        return this.refuse((err as Error).message, { plain: true });
      }
      this.conn.startSealing(this.keys);
      if (out) {
        const self = this.opts.hello.nodeId;
        const proof = helloProof(this.keys, "dialer", self, this.opts.expect ?? "");
        this.conn.write({ type: "HELLO", fields: { ...encodeHello(this.opts.hello, this.opts.expect), proof } });
      }
      return;
    }
    // Keys are agreed and this frame opened with them: the peer holds the cluster key. Its proof binds the ids.
    if (msg.type !== "HELLO") return this.violation("E_HANDSHAKE", `${this.conn.label} sent ${msg.type} before HELLO`);
    const out = this.opts.direction === "out";
    const self = this.opts.hello.nodeId;
    const peerId = String(msg.fields.node_id);
    const meant = out ? self : typeof msg.fields.to === "string" ? msg.fields.to : "";
    if (!checkHelloProof(this.keys, out ? "acceptor" : "dialer", peerId, meant, msg.fields.proof))
      return this.refuse(`the HELLO of ${this.conn.label} carries no valid proof for node ${peerId}`);
    this.acceptHello(msg);
  }

  /** The peer's HELLO: check it, admit it, answer (acceptor), and the link is up. */
  private acceptHello(msg: Message): void {
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
      const refusal = this.opts.admit?.(peer, this.conn.remoteAddress);
      if (refusal) throw new NodeError("E_HANDSHAKE", refusal);
    } catch (err) {
      return this.refuse((err as NodeError).message);
    }
    clearTimeout(this.handshakeTimer);
    if (this.opts.direction === "in") {
      const fields = encodeHello(this.opts.hello);
      if (this.keys) fields.proof = helloProof(this.keys, "acceptor", this.opts.hello.nodeId, peer.nodeId);
      this.conn.write({ type: "HELLO", fields });
    }
    this.peer = peer;
    this.conn.plainErrorsAllowed = false;
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
