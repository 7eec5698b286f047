// Counters the pool exposes (GET /debug/net, `exo doctor`, tests): dials, ports, frames per link.
import type { Link } from "./link.ts";

export interface LinkStats {
  connectionId: number;
  direction: "in" | "out";
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  openedAt: number;
  framesIn: number;
  framesOut: number;
  requestsSent: number;
}

export interface PeerStats {
  nodeId: string;
  /** Listed in the peer file (this node dials it). */
  configured: boolean;
  address?: string;
  up: boolean;
  /** Outbound connection attempts so far, successful or not. */
  dials: number;
  dialFailures: number;
  /** Why the last failed dial failed (connection refused, handshake refused with the peer's reason, ...). */
  lastDialError?: string;
  outbound?: LinkStats;
  inbound: LinkStats[];
  health: { checks: number; failures: number; lastMs?: number };
}

export interface PoolStats {
  nodeId: string;
  /** Sockets accepted by the server (peers, probes and strangers). */
  accepted: number;
  /** Connections closed before their handshake completed (refused, bad frames, timeouts). */
  refused: number;
  probes: number;
  peers: PeerStats[];
}

/** A snapshot of one link's counters. */
export function linkStats(l: Link): LinkStats {
  const c = l.conn;
  return {
    connectionId: c.id,
    direction: c.direction,
    localPort: c.localPort,
    remoteAddress: c.remoteAddress,
    remotePort: c.remotePort,
    openedAt: c.openedAt,
    framesIn: c.framesIn,
    framesOut: c.framesOut,
    requestsSent: l.requestsSent,
  };
}
