// The shapes of a running node, apart from the code that builds them, so node.ts, services.ts and debug.ts
// depend on these types and not on each other.
import type { ClusterService } from "../cluster/service.ts";
import type { NodeOptions } from "../config/node-options.ts";
import type { ModelStore } from "../download/types.ts";
import type { PeerPool } from "../net/peer-pool.ts";
import type { TopologyService } from "../net/topology-service.ts";
import type { PeerTransport } from "../net/transport.ts";
import type { DeviceCapabilities } from "../topology/types.ts";

/** What the services (cluster, downloads) get from a node whose links are up. */
export interface ExoNodeCore {
  readonly nodeId: string;
  readonly options: Readonly<NodeOptions>;
  readonly transport: PeerTransport;
  readonly pool: PeerPool;
  readonly topology: TopologyService;
  readonly capabilities: DeviceCapabilities;
  /** The peer-link port actually bound. */
  readonly port: number;
  /** Memory (MB) of a node as known now (its HELLO, else the peer file); undefined when unknown. */
  memoryOf(nodeId: string): number | undefined;
  /** Capabilities of a node as known now (its HELLO, else the peer file); undefined when unknown. */
  capabilitiesOf(nodeId: string): DeviceCapabilities | undefined;
}

/** What a node plugs into the HTTP API besides its links: inference and the model store. */
export interface NodeServices {
  /** The cluster service: the API's InferenceService, and `exo run` prepares a model with it ahead of the first request. */
  inference: ClusterService;
  models: ModelStore;
  /** GET /debug/state: request state held on this node (tests assert it returns to zero). */
  debugState?: () => Promise<unknown>;
  /** Release whatever the services hold (runner processes, downloads). */
  stop(): Promise<void>;
}

export interface ExoNode extends ExoNodeCore {
  readonly apiPort: number;
  readonly services: NodeServices;
  /** Refuse new generations and wait (up to --drain-ms) for the running requests to finish; SIGTERM does it before stop(). */
  drain(): Promise<void>;
  /** Close the API, the links (peers see a clean disconnect) and the server. Idempotent. */
  stop(): Promise<void>;
}

export interface CreateNodeHooks {
  /** Replace the services (tests, `exo run`); default createNodeServices. */
  services?: (core: ExoNodeCore) => Promise<NodeServices>;
  /** Capabilities to report instead of detecting them (tests). */
  capabilities?: DeviceCapabilities;
}
