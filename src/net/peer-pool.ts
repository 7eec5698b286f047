// The PeerPool: one persistent link per peer and direction, re-dialled with backoff only after a real
// failure, inbound links usable both ways, and the PeerTransport the cluster talks through.
import { asNodeId, type NodeId } from "../ids.ts";
import type { Socket } from "bun";
import { NodeError, isNodeError } from "../errors.ts";
import { logger } from "../log.ts";
import type { Message, MessageTypeName } from "../protocol/types.ts";
import type { MessageHandler, PeerTransport, RequestOptions } from "./transport.ts";
import { ZERO_COPY_MIN_BYTES, type SocketData } from "./connection.ts";
import type { Hello } from "./hello.ts";
import { addressRefusal, type AdmittedAddresses } from "./admission.ts";
import { HandlerTable } from "./handlers.ts";
import { Link } from "./link.ts";
import { createReceiveBudget, defaultBudgetBytes } from "./receive-budget.ts";
import { createRefusalLog } from "./refusal-log.ts";
import { dialTcp } from "./sockets.ts";
import { linkStats, type PeerStats, type PoolStats } from "./stats.ts";

const log = logger("net");

/** A peer this node should dial (from the peer file). */
export interface PeerAddress {
  nodeId: string;
  address: string;
  port: number;
}

export interface PeerPoolOptions {
  selfId: string;
  /** This node's HELLO (its listen port is known only once the server is up). */
  hello(): Hello;
  requestTimeoutMs: number;
  healthTimeoutMs: number;
  dialTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  /** The cluster key (authenticated, sealed links); undefined = keyless links, admitted by address. */
  clusterKey?: Uint8Array;
  /** Bytes partly received big frames may hold across all links (default: defaultBudgetBytes). */
  receiveBudgetBytes?: number;
}

interface PeerState {
  id: NodeId;
  spec?: PeerAddress;
  outbound?: Link;
  inbound: Link[];
  up: boolean;
  hello?: Hello;
  dials: number;
  dialFailures: number;
  lastDialError?: string;
  dialing: boolean;
  backoffMs: number;
  redialTimer?: ReturnType<typeof setTimeout>;
  health: { checks: number; failures: number; lastMs?: number };
}

/** Every link of this node, by peer; the PeerTransport the cluster uses. Guards the mutable link state. */
export class PeerPool implements PeerTransport {
  readonly selfId: NodeId;
  readonly opts: PeerPoolOptions;
  private readonly peers = new Map<string, PeerState>();
  private readonly handlers: HandlerTable;
  private readonly listeners = new Set<(peer: NodeId, up: boolean) => void>();
  private readonly unready = new Set<Link>(); // links still in their handshake
  private readonly probes = new Set<Link>();
  /** Node ids allowed to link in; undefined (no peer file) admits any node. */
  private members: Set<string> | undefined;
  private stopped = false;
  private counters = { accepted: 0, refused: 0 };
  private clusterKey: Uint8Array | undefined;
  /** Keyless links only: where each node id may link in from (undefined = no peer file, any address). */
  private admitted: AdmittedAddresses | undefined;
  private readonly budget;
  private readonly refusals = createRefusalLog((line) => log.warn(line));

  constructor(opts: PeerPoolOptions) {
    this.opts = opts;
    this.selfId = asNodeId(opts.selfId);
    this.handlers = new HandlerTable(opts.selfId);
    this.clusterKey = opts.clusterKey;
    this.budget = createReceiveBudget(opts.receiveBudgetBytes ?? defaultBudgetBytes(opts.maxFrameBytes));
    this.handle("HEALTH", () => ({ type: "HEALTH_OK" }));
  }

  /** Apply the peer file: dial new peers, re-dial moved ones, drop removed ones. `undefined` = no peer file. */
  setPeers(specs: PeerAddress[] | undefined): void {
    const next = new Map((specs ?? []).filter((s) => s.nodeId !== this.selfId).map((s) => [s.nodeId, s]));
    this.members = specs === undefined ? undefined : new Set(next.keys());
    for (const p of this.peers.values()) {
      if (this.members && !this.members.has(p.id)) {
        p.spec = undefined;
        clearTimeout(p.redialTimer);
        this.closeAll(p, "removed from the peer file");
        this.peers.delete(p.id);
      }
    }
    for (const spec of next.values()) {
      const p = this.state(spec.nodeId);
      const moved = p.spec && (p.spec.address !== spec.address || p.spec.port !== spec.port);
      p.spec = spec;
      p.backoffMs = this.opts.backoffMinMs;
      if (moved) p.outbound?.close(`address changed to ${spec.address}:${spec.port}`);
      if (!p.outbound) void this.dial(p);
    }
  }

  /** Keyless links: the addresses each node id may link in from (from the peer file, names resolved). */
  setAdmittedAddresses(admitted: AdmittedAddresses | undefined): void {
    this.admitted = admitted;
  }

  /** A new cluster key (or none): later links use it, and every open link is re-established with it. */
  setClusterKey(key: Uint8Array | undefined): void {
    if (key && this.clusterKey ? Buffer.from(key).equals(this.clusterKey) : key === this.clusterKey) return;
    this.clusterKey = key;
    log.info(`cluster key ${key ? "changed" : "removed"}: re-establishing every link`);
    for (const p of this.peers.values()) {
      p.backoffMs = this.opts.backoffMinMs;
      this.closeAll(p, "the cluster key changed");
    }
    for (const l of [...this.unready, ...this.probes]) l.close("the cluster key changed");
  }

  /** Wrap a socket accepted by the server. */
  accept(socket: Socket<SocketData>): void {
    if (this.stopped) return void socket.end();
    this.counters.accepted++;
    this.track(socket, "in", (peer, from) => {
      if (!peer.probe && this.members && !this.members.has(peer.nodeId))
        return `node ${peer.nodeId} is not in node ${this.selfId}'s peer file`;
      // Without a key the address is all there is to check: a listed id only from the address listed for it.
      return this.clusterKey || !this.admitted ? undefined : addressRefusal(this.admitted, peer, from, this.selfId);
    });
  }

  async request(
    peer: string,
    type: MessageTypeName,
    fields?: Record<string, unknown>,
    body?: Uint8Array,
    opts?: RequestOptions,
  ): Promise<Message> {
    if (peer === this.selfId) return this.handlers.requestSelf(type, fields ?? {}, body);
    const timeoutMs = opts?.timeoutMs ?? (type === "HEALTH" ? this.opts.healthTimeoutMs : this.opts.requestTimeoutMs);
    return this.linkTo(peer).request(type, fields, body, timeoutMs);
  }

  async send(peer: string, type: MessageTypeName, fields?: Record<string, unknown>, body?: Uint8Array): Promise<void> {
    if (peer === this.selfId) {
      // Like a remote send: resolve once queued, deliver on a later turn (in order), never wait for the handler.
      queueMicrotask(
        () => void this.handlers.deliver({ type, fields: fields ?? {}, body: body ?? new Uint8Array(0) }, this.selfId),
      );
      return;
    }
    const link = this.linkTo(peer);
    link.send(type, fields, body);
    // A large body goes out from the caller's buffer: resolve once the kernel has it, so the caller may reuse it.
    // That is also the backpressure for big tensors; small frames wait only when a lot is queued.
    if ((body?.byteLength ?? 0) >= ZERO_COPY_MIN_BYTES || link.conn.queuedBytes > 64 * 1024 * 1024)
      await link.conn.flushed();
  }

  handle(type: MessageTypeName, handler: MessageHandler): void {
    this.handlers.set(type, handler);
  }

  peersUp(): NodeId[] {
    return [...this.peers.values()].filter((p) => p.up).map((p) => p.id);
  }

  onPeerChange(listener: (peer: NodeId, up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The peer's own HELLO (capabilities, port), when a link to it is up. */
  helloOf(peer: string): Hello | undefined {
    return this.peers.get(peer)?.hello;
  }

  /** True when the peer file lists this peer (its links are "MAN"). */
  isConfigured(peer: string): boolean {
    return this.peers.get(peer)?.spec !== undefined;
  }

  /** Close every link to `peer` (it goes down; a configured peer is re-dialled with backoff). */
  disconnect(peer: string, reason: string): void {
    const p = this.peers.get(peer);
    if (p) this.closeAll(p, reason);
  }

  /** Record a health result; a failure closes every link to the peer (it goes down and is re-dialled). */
  reportHealth(peer: string, ok: boolean, ms: number, reason?: string): void {
    const p = this.peers.get(peer);
    if (!p) return;
    p.health.checks++;
    if (ok) p.health.lastMs = ms;
    else {
      p.health.failures++;
      this.closeAll(p, `health check failed: ${reason ?? "no answer"}`);
    }
  }

  /** Dial configured peers that have no outbound link and no dial scheduled (a safety net run on each health tick). */
  redialIdle(): void {
    for (const p of this.peers.values()) if (p.spec && !p.outbound && !p.dialing && !p.redialTimer) void this.dial(p);
  }

  stats(): PoolStats {
    const peers: PeerStats[] = [...this.peers.values()].map((p) => ({
      nodeId: p.id,
      configured: p.spec !== undefined,
      address: p.spec ? `${p.spec.address}:${p.spec.port}` : undefined,
      up: p.up,
      dials: p.dials,
      dialFailures: p.dialFailures,
      lastDialError: p.lastDialError,
      outbound: p.outbound?.isReady ? linkStats(p.outbound) : undefined,
      inbound: p.inbound.map(linkStats),
      health: { ...p.health },
    }));
    return { nodeId: this.selfId, ...this.counters, probes: this.probes.size, peers };
  }

  /** Close every link and stop dialling; peers see a clean disconnect. */
  stop(): void {
    this.stopped = true;
    for (const p of this.peers.values()) {
      clearTimeout(p.redialTimer);
      this.closeAll(p, "node shutting down");
    }
    for (const l of [...this.unready, ...this.probes]) l.close("node shutting down");
    this.refusals.stop();
  }

  private state(id: string): PeerState {
    let p = this.peers.get(id);
    if (!p) {
      p = {
        id: asNodeId(id),
        inbound: [],
        up: false,
        dials: 0,
        dialFailures: 0,
        dialing: false,
        backoffMs: this.opts.backoffMinMs,
        health: { checks: 0, failures: 0 },
      };
      this.peers.set(id, p);
    }
    return p;
  }

  /** The link requests to `peer` go out on: our own outbound one, else the newest inbound one. */
  private linkTo(peer: string): Link {
    const p = this.peers.get(peer);
    if (!p) throw new NodeError("E_PEER_UNKNOWN", `node ${this.selfId} knows no peer ${peer}`);
    if (p.outbound?.isReady) return p.outbound;
    const inbound = p.inbound.findLast((l) => l.isReady);
    if (inbound) return inbound;
    throw new NodeError("E_PEER_DOWN", `peer ${peer} is down (no link from node ${this.selfId})`);
  }

  private track(
    socket: Socket<SocketData>,
    direction: "in" | "out",
    admit: (peer: Hello, from: string) => string | undefined,
    expect?: string,
  ): Link {
    const link = new Link(socket, {
      direction,
      expect,
      hello: this.opts.hello(),
      admit,
      clusterKey: this.clusterKey,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      maxFrameBytes: this.opts.maxFrameBytes,
      budget: this.budget,
      warnUnauthenticated: (message, code) => this.refusals.warn(message, code),
      onMessage: (l, msg) => void this.handlers.dispatch(l, msg),
      onReady: (l) => this.linkReady(l),
      onClose: (l, reason) => this.linkClosed(l, reason),
    });
    this.unready.add(link);
    return link;
  }

  private linkReady(link: Link): void {
    this.unready.delete(link);
    const hello = link.peer!;
    if (hello.probe) {
      this.probes.add(link);
      return;
    }
    // A dial that was in flight when the peer file dropped this peer (or the node began to stop).
    if (this.stopped || (this.members && !this.members.has(hello.nodeId))) {
      link.close(this.stopped ? "node shutting down" : "removed from the peer file");
      return;
    }
    const p = this.state(hello.nodeId);
    p.hello = hello;
    if (link.conn.direction === "out") {
      p.outbound = link;
      p.backoffMs = this.opts.backoffMinMs;
    } else {
      p.inbound.push(link);
      // The peer just proved it is up: dial it back now rather than when the backoff runs out.
      if (p.spec && !p.outbound && p.redialTimer) {
        clearTimeout(p.redialTimer);
        p.redialTimer = undefined;
        p.backoffMs = this.opts.backoffMinMs;
        void this.dial(p);
      }
    }
    log.info(`link up: ${link.conn.label}`);
    this.recompute(p);
  }

  private linkClosed(link: Link, reason: string): void {
    if (this.unready.delete(link)) {
      this.counters.refused++;
      return;
    }
    if (this.probes.delete(link)) return;
    const p = this.peers.get(link.peer!.nodeId);
    if (!p) return;
    if (p.outbound === link) p.outbound = undefined;
    p.inbound = p.inbound.filter((l) => l !== link);
    log.info(`link down: ${link.conn.label}: ${reason}`);
    this.recompute(p);
    if (p.spec && !p.outbound && !this.stopped) this.scheduleDial(p);
  }

  private recompute(p: PeerState): void {
    const up = (p.outbound?.isReady ?? false) || p.inbound.some((l) => l.isReady);
    if (up === p.up) return;
    p.up = up;
    log.info(`peer ${p.id} is ${up ? "up" : "down"}`);
    for (const l of this.listeners) l(p.id, up);
  }

  private closeAll(p: PeerState, reason: string): void {
    for (const l of [p.outbound, ...p.inbound]) l?.close(reason);
  }

  private scheduleDial(p: PeerState): void {
    if (p.redialTimer || p.dialing) return;
    const delay = p.backoffMs * (0.8 + Math.random() * 0.4);
    p.backoffMs = Math.min(p.backoffMs * 2, this.opts.backoffMaxMs);
    p.redialTimer = setTimeout(() => {
      p.redialTimer = undefined;
      void this.dial(p);
    }, delay);
  }

  private async dial(p: PeerState): Promise<void> {
    const spec = p.spec;
    if (!spec || p.dialing || p.outbound || this.stopped) return;
    p.dialing = true;
    p.dials++;
    let link: Link | undefined;
    try {
      await dialTcp(spec.address, spec.port, this.opts.dialTimeoutMs, (socket) => {
        link = this.track(
          socket,
          "out",
          (peer) =>
            peer.nodeId === spec.nodeId
              ? undefined
              : `expected node ${spec.nodeId} at ${spec.address}:${spec.port}, found node ${peer.nodeId}`,
          spec.nodeId,
        );
      });
      await link!.ready;
    } catch (err) {
      p.dialFailures++;
      const msg = isNodeError(err) ? err.message : String(err);
      p.lastDialError = msg;
      if (p.dialFailures === 1 || p.dialFailures % 20 === 0)
        log.info(`dial ${spec.nodeId} at ${spec.address}:${spec.port} failed (${p.dialFailures}x): ${msg}`);
      else log.debug(`dial ${spec.nodeId} failed: ${msg}`);
      link?.close(msg);
    } finally {
      p.dialing = false;
    }
    if (!p.outbound && p.spec && !this.stopped && this.peers.get(p.id) === p) this.scheduleDial(p);
  }
}
