// The contract between the cluster (orchestration) and the network: addressed messages between nodes.
// src/net implements it over TCP links; tests may implement it in memory. Sending to yourself
// (peer === selfId) is delivered locally, so a one-node cluster takes the same code path.
import type { NodeId } from "../ids.ts";
import type { Message, MessageTypeName } from "../protocol/types.ts";

/** The answer a handler gives to a request; the transport echoes the request's `id` onto it. */
export interface Reply {
  type: MessageTypeName;
  fields?: Record<string, unknown>;
  body?: Uint8Array;
  /** Bulk data (model file bytes): sent only while the link has nothing else queued (net/bulk-lane.ts). */
  bulk?: boolean;
}

// A handler that answers nothing returns void (one-way messages).
// biome-ignore lint/suspicious/noConfusingVoidType: void, not undefined, so one-way handlers need no explicit return
export type MessageHandler = (msg: Message, from: string) => Reply | void | Promise<Reply | void>;

export interface RequestOptions {
  /** Deadline for the answer; default 30 s (5 s for HEALTH). Expiry rejects with E_PEER_TIMEOUT. */
  timeoutMs?: number;
}

export interface PeerTransport {
  readonly selfId: NodeId;
  /**
   * Send a request and wait for the answer with the same id. An ERROR answer rejects with a
   * NodeError carrying the remote code and message; a lost link rejects with E_PEER_DOWN.
   */
  request(
    peer: string,
    type: MessageTypeName,
    fields?: Record<string, unknown>,
    body?: Uint8Array,
    opts?: RequestOptions,
  ): Promise<Message>;
  /** One-way message (no answer expected). Rejects with E_PEER_DOWN when there is no link. */
  send(peer: string, type: MessageTypeName, fields?: Record<string, unknown>, body?: Uint8Array): Promise<void>;
  /** The single handler for incoming messages of `type` (requests and one-way alike). A thrown NodeError becomes an ERROR answer. */
  handle(type: MessageTypeName, handler: MessageHandler): void;
  /** Node ids of peers whose link is up right now (self excluded). */
  peersUp(): NodeId[];
  /** Called whenever a peer goes up or down. Returns an unsubscribe function. */
  onPeerChange(listener: (peer: NodeId, up: boolean) => void): () => void;
}
