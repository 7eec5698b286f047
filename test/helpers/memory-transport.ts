// An in-memory PeerTransport network for cluster unit tests: ordered, asynchronous delivery per link,
// request/answer by id, ERROR answers as NodeErrors, and nodes that can be killed (peers see them go down).
import { asNodeId, type NodeId } from "../../src/ids.ts";
import { NodeError, errorCode } from "../../src/errors.ts";
import type { Message, MessageTypeName } from "../../src/protocol/types.ts";
import type { MessageHandler, PeerTransport } from "../../src/net/transport.ts";

interface MemoryNode {
  transport: PeerTransport;
  handlers: Map<MessageTypeName, MessageHandler>;
  listeners: Set<(peer: NodeId, up: boolean) => void>;
  alive: boolean;
}

export interface MemoryNetwork {
  /** A transport for `nodeId`, linked to every node already made (and every later one). */
  add(nodeId: string): PeerTransport;
  /** The node stops answering; every other node sees it go down. Its in-flight requests reject. */
  kill(nodeId: string): void;
  /** Messages delivered so far, by type (tests check routing). */
  counts: Map<MessageTypeName, number>;
}

export function createMemoryNetwork(): MemoryNetwork {
  const nodes = new Map<string, MemoryNode>();
  const counts = new Map<MessageTypeName, number>();
  const waiting = new Map<string, Set<(err: NodeError) => void>>();

  // Each message crosses an event-loop turn, like a socket, and per-link order is kept by FIFO timers.
  function deliver(from: string, to: string, msg: Message): Promise<unknown> {
    return new Promise((resolve, reject) => {
      setImmediate(async () => {
        const target = nodes.get(to);
        if (!target?.alive || !nodes.get(from)?.alive)
          return reject(new NodeError("E_PEER_DOWN", `no link from ${from} to ${to}`));
        counts.set(msg.type, (counts.get(msg.type) ?? 0) + 1);
        const handler = target.handlers.get(msg.type);
        try {
          resolve(handler ? await handler(msg, from) : undefined);
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  function add(nodeId: string): PeerTransport {
    const handlers = new Map<MessageTypeName, MessageHandler>();
    const listeners = new Set<(peer: NodeId, up: boolean) => void>();
    const transport: PeerTransport = {
      selfId: asNodeId(nodeId),
      async request(peer, type, fields = {}, body = new Uint8Array(), opts = {}) {
        const pending = new Set<(err: NodeError) => void>();
        const aborted = new Promise<never>((_, reject) => {
          const fail = (err: NodeError) => reject(err);
          for (const end of [peer, nodeId]) {
            const set = waiting.get(end) ?? new Set();
            waiting.set(end, set);
            set.add(fail);
          }
          pending.add(fail);
        });
        const timeoutMs = opts.timeoutMs ?? 30_000;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new NodeError("E_PEER_TIMEOUT", `${type} to ${peer} timed out`)), timeoutMs);
        });
        try {
          const reply = (await Promise.race([deliver(nodeId, peer, { type, fields, body }), aborted, timeout])) as
            | { type: MessageTypeName; fields?: Record<string, unknown>; body?: Uint8Array }
            | undefined;
          return { type: reply?.type ?? "OK", fields: reply?.fields ?? {}, body: reply?.body ?? new Uint8Array() };
        } catch (err) {
          throw err instanceof NodeError
            ? err
            : new NodeError(errorCode(err), err instanceof Error ? err.message : String(err));
        } finally {
          clearTimeout(timer);
          for (const set of waiting.values()) for (const f of pending) set.delete(f);
        }
      },
      async send(peer, type, fields = {}, body = new Uint8Array()) {
        if (!nodes.get(peer)?.alive) throw new NodeError("E_PEER_DOWN", `no link to ${peer}`);
        deliver(nodeId, peer, { type, fields, body }).catch(() => {});
      },
      handle(type, handler) {
        handlers.set(type, handler);
      },
      peersUp: () => [...nodes.entries()].filter(([id, n]) => id !== nodeId && n.alive).map(([id]) => asNodeId(id)),
      onPeerChange(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    nodes.set(nodeId, { transport, handlers, listeners, alive: true });
    for (const [id, n] of nodes) if (id !== nodeId) for (const l of n.listeners) l(asNodeId(nodeId), true);
    return transport;
  }

  function kill(nodeId: string): void {
    const node = nodes.get(nodeId);
    if (!node) return;
    node.alive = false;
    for (const fail of waiting.get(nodeId) ?? []) fail(new NodeError("E_PEER_DOWN", `link to ${nodeId} lost`));
    waiting.delete(nodeId);
    for (const [id, n] of nodes) if (id !== nodeId && n.alive) for (const l of n.listeners) l(asNodeId(nodeId), false);
  }

  return { add, kill, counts };
}
