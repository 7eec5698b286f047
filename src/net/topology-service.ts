// The node's view of the cluster, served to peers over the pool: its own links (self → every peer that is up),
// merged with the views collected from peers across hops (TOPOLOGY_REQ {visited, max_depth}). Cached for GET /topology.
import { isNodeError } from "../errors.ts";
import { logger } from "../log.ts";
import {
  MANUAL_LINK,
  buildTopology,
  mergeTopologies,
  parseTopologyJson,
  topologyToJson,
  type Topology,
} from "../topology/graph.ts";
import { UNKNOWN_CAPABILITIES, type DeviceCapabilities } from "../topology/types.ts";
import type { PeerPool } from "./peer-pool.ts";

const log = logger("net");

/** Description of a link to a peer that is not in this node's peer file (it dialled us). */
export const INBOUND_LINK = "IN";

export interface TopologyServiceOptions {
  pool: PeerPool;
  capabilities: DeviceCapabilities;
  /** Capabilities the peer file gives for a peer (used until the peer reports its own). */
  configuredCapabilities(nodeId: string): DeviceCapabilities | undefined;
  maxDepth: number;
  /** Deadline of one TOPOLOGY_REQ. */
  timeoutMs: number;
  /** Period of background collections (the health interval). */
  refreshIntervalMs: number;
}

export interface TopologyService {
  /** The last collected topology (never waits). */
  current(): Topology;
  /** Collect now across hops; updates current(). */
  refresh(): Promise<Topology>;
  /** This node's own links only. */
  localView(): Topology;
  stop(): void;
}

/** Start the topology service: answers TOPOLOGY_REQ and keeps current() fresh on peer changes and every interval. */
export function createTopologyService(opts: TopologyServiceOptions): TopologyService {
  const { pool } = opts;
  const selfId = pool.selfId;

  const localView = (): Topology => {
    const peers = pool.peersUp();
    return buildTopology({
      nodes: [
        [selfId, opts.capabilities],
        ...peers.map(
          (id) =>
            [id, pool.helloOf(id)?.capabilities ?? opts.configuredCapabilities(id) ?? UNKNOWN_CAPABILITIES] as const,
        ),
      ],
      links: peers.map((id) => ({
        fromId: selfId,
        toId: id,
        description: pool.isConfigured(id) ? MANUAL_LINK : INBOUND_LINK,
      })),
    });
  };

  /** Own view plus the views of peers not yet visited, each asked to go one hop less deep. */
  const collect = async (visited: ReadonlySet<string>, depth: number): Promise<Topology> => {
    const own = localView();
    const peers = pool.peersUp();
    const next = [...new Set([...visited, selfId, ...peers])];
    const ask = depth > 0 ? peers.filter((p) => !visited.has(p)) : [];
    const views = await Promise.all(
      ask.map(async (peer) => {
        try {
          const answer = await pool.request(peer, "TOPOLOGY_REQ", { visited: next, max_depth: depth - 1 }, undefined, {
            timeoutMs: opts.timeoutMs,
          });
          return parseTopologyJson(answer.fields.topology);
        } catch (err) {
          log.debug(`topology from ${peer} failed: ${isNodeError(err) ? err.message : String(err)}`);
          return undefined;
        }
      }),
    );
    return mergeTopologies(own, ...views.filter((v): v is Topology => v !== undefined));
  };

  pool.handle("TOPOLOGY_REQ", async (msg) => {
    const visited = Array.isArray(msg.fields.visited)
      ? msg.fields.visited.filter((v): v is string => typeof v === "string").slice(0, 10_000)
      : [];
    const asked = Number(msg.fields.max_depth);
    const depth = Number.isInteger(asked) ? Math.max(0, Math.min(asked, opts.maxDepth)) : opts.maxDepth;
    const topology = await collect(new Set(visited), depth);
    return { type: "TOPOLOGY", fields: { topology: topologyToJson(topology) } };
  });

  let cached = localView();
  let inFlight: Promise<Topology> | undefined;
  let queued: Promise<Topology> | undefined;
  const run = (): Promise<Topology> =>
    (inFlight = collect(new Set(), opts.maxDepth)
      .then((t) => (cached = t))
      .finally(() => (inFlight = undefined)));
  /** A collection that starts after this call: joins the one queued behind a running collection, if any. */
  const refresh = (): Promise<Topology> => {
    if (!inFlight) return run();
    queued ??= inFlight
      .catch(() => cached)
      .then(() => {
        queued = undefined;
        return run();
      });
    return queued;
  };
  const unsubscribe = pool.onPeerChange(() => void refresh());
  // Peers' own links change without our links changing: collect again every interval too.
  const timer = setInterval(() => void refresh(), opts.refreshIntervalMs);
  void refresh();

  return {
    current: () => cached,
    refresh,
    localView,
    stop: () => {
      unsubscribe();
      clearInterval(timer);
    },
  };
}
