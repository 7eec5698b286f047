// Node options from CLI flags and the environment (EXO_HOME, EXO_API_KEY): the one place that turns
// them into a frozen, validated NodeOptions. Flag names follow DESIGN §4; additions are in src/net/README.md.
import { hostname } from "node:os";
import { NodeError } from "../errors.ts";
import { exoHome } from "./exo-home.ts";

/** Default TCP port for peer links (exo's 50051) and for the HTTP API (exo's 52415). */
export const DEFAULT_PORT = 50051;
export const DEFAULT_API_PORT = 52415;

export interface NodeOptions {
  nodeId: string;
  /** Address the peer-link server binds. */
  host: string;
  /** Peer-link port; undefined = the peer file's entry for this node, else DEFAULT_PORT. 0 picks a free one. */
  port: number | undefined;
  apiHost: string;
  apiPort: number;
  /** Peer file (YAML or exo's JSON); undefined = no peers, any node may link in. */
  configPath: string | undefined;
  modelsDir: string | undefined;
  exoHome: string;
  apiKey: string | undefined;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  /** Default deadline of a request to a peer. */
  requestTimeoutMs: number;
  /** A stage preparing a model (download, load) with no progress for this long fails the prepare. */
  prepareStallMs: number;
  /** Failovers one request may take when a stage of its plan goes down (0: none). */
  maxFailovers: number;
  /** Longest one failover may take, from the failure to the next token. */
  recoveryMs: number;
  /** Requests generating at once on this node: the engine's live-request cap and the coordinator's admission limit. */
  maxLive: number;
  /** Requests a coordinator queues beyond `maxLive` (FIFO); one more is refused with HTTP 429. */
  queueSize: number;
  /** KV-cache memory (MB) the requests a coordinator runs may hold at once; undefined: not counted. */
  kvCacheMb: number | undefined;
  /** On SIGTERM, longest the node waits for its running requests before it exits (and they fail over). */
  drainMs: number;
  dialTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxFrameBytes: number;
  /** Hops a topology collection may travel. */
  topologyMaxDepth: number;
  /** Hidden, for tests: "fake" runs the no-MLX fake engine in-process instead of the MLX runner. */
  engine: "mlx" | "fake";
  /** Hidden, for tests: the fake engine's delay per step. */
  fakeStepMs: number;
  /** Hidden, for tests: report this much memory (MB) instead of the detected amount (uneven placements). */
  memoryMb: number | undefined;
  /** Hidden, for benchmarks: most decode steps the MLX runner puts in one forward (1: each step alone). */
  maxBatch: number | undefined;
  /** Models served besides the catalog (local directories, Hugging Face repo ids), from --models. */
  models: string[];
  /** EXO_CLUSTER_KEY (overrides the peer file's cluster_key). */
  clusterKey: string | undefined;
  /** --cluster-key-file (overrides EXO_CLUSTER_KEY and the peer file). */
  clusterKeyFile: string | undefined;
}

/** Flag values as citty hands them over (strings; see src/cli/node-args.ts). */
export interface NodeFlags {
  config?: string;
  "node-id"?: string;
  host?: string;
  port?: string;
  "api-host"?: string;
  "api-port"?: string;
  "models-dir"?: string;
  "health-interval-ms"?: string;
  "health-timeout-ms"?: string;
  "request-timeout-ms"?: string;
  "max-failovers"?: string;
  "recovery-ms"?: string;
  "drain-ms"?: string;
  "max-live"?: string;
  "queue-size"?: string;
  "kv-cache-mb"?: string;
  "prepare-stall-ms"?: string;
  "max-frame-bytes"?: string;
  engine?: string;
  "fake-step-ms"?: string;
  "memory-mb"?: string;
  "max-batch"?: string;
  models?: string;
  "cluster-key-file"?: string;
}

/** A stable id from the host name: lower case, letters, digits, `-` and `_` only. */
export function defaultNodeId(host: string = hostname()): string {
  const id = host
    .split(".")[0]!
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return id || "node";
}

function integer(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new NodeError("E_CONFIG_INVALID", `--${flag}: expected an integer ${min}-${max}, got "${value}"`);
  }
  return n;
}

function engineKind(value: string | undefined): "mlx" | "fake" {
  if (value === undefined || value === "" || value === "mlx" || value === "fake")
    return value === "fake" ? "fake" : "mlx";
  throw new NodeError("E_CONFIG_INVALID", `--engine: expected mlx or fake, got "${value}"`);
}

/**
 * Options for one node process.
 * @throws NodeError E_CONFIG_INVALID naming the flag that is wrong
 */
export function parseNodeOptions(
  flags: NodeFlags,
  env: Record<string, string | undefined> = process.env,
): Readonly<NodeOptions> {
  const nodeId = (flags["node-id"] ?? "").trim() || defaultNodeId();
  if (!/^[A-Za-z0-9_.@:-]+$/.test(nodeId)) {
    throw new NodeError("E_CONFIG_INVALID", `--node-id: "${nodeId}" may use only letters, digits and . _ - @ :`);
  }
  const healthIntervalMs = integer("health-interval-ms", flags["health-interval-ms"], 5000, 50, 3_600_000);
  return Object.freeze({
    nodeId,
    host: flags.host || "0.0.0.0",
    port:
      flags.port === undefined || flags.port === "" ? undefined : integer("port", flags.port, DEFAULT_PORT, 0, 65535),
    apiHost: flags["api-host"] || "0.0.0.0",
    apiPort: integer("api-port", flags["api-port"], DEFAULT_API_PORT, 0, 65535),
    configPath: flags.config || undefined,
    modelsDir: flags["models-dir"] || undefined,
    exoHome: exoHome(env),
    apiKey: env.EXO_API_KEY || undefined,
    healthIntervalMs,
    healthTimeoutMs: integer(
      "health-timeout-ms",
      flags["health-timeout-ms"],
      Math.min(5000, healthIntervalMs),
      10,
      600_000,
    ),
    requestTimeoutMs: integer("request-timeout-ms", flags["request-timeout-ms"], 30_000, 10, 3_600_000),
    prepareStallMs: integer("prepare-stall-ms", flags["prepare-stall-ms"], 60_000, 100, 24 * 3_600_000),
    maxFailovers: integer("max-failovers", flags["max-failovers"], 3, 0, 100),
    recoveryMs: integer("recovery-ms", flags["recovery-ms"], 120_000, 100, 24 * 3_600_000),
    drainMs: integer("drain-ms", flags["drain-ms"], 30_000, 0, 3_600_000),
    maxLive: integer("max-live", flags["max-live"], 32, 1, 4096),
    queueSize: integer("queue-size", flags["queue-size"], 256, 0, 1_000_000),
    kvCacheMb: integer("kv-cache-mb", flags["kv-cache-mb"], 0, 0, 1 << 30) || undefined,
    dialTimeoutMs: 5000,
    handshakeTimeoutMs: 5000,
    maxFrameBytes: integer("max-frame-bytes", flags["max-frame-bytes"], 256 * 1024 * 1024, 1024, 0xffffffff),
    topologyMaxDepth: 4,
    engine: engineKind(flags.engine),
    fakeStepMs: integer("fake-step-ms", flags["fake-step-ms"], 0, 0, 60_000),
    memoryMb: flags["memory-mb"] ? integer("memory-mb", flags["memory-mb"], 0, 1, 1 << 30) : undefined,
    maxBatch: flags["max-batch"] ? integer("max-batch", flags["max-batch"], 32, 1, 1024) : undefined,
    models: (flags.models ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter((m) => m !== ""),
    clusterKey: env.EXO_CLUSTER_KEY || undefined,
    clusterKeyFile: flags["cluster-key-file"] || undefined,
  });
}

/**
 * Options of `exo doctor`. @throws NodeError E_CONFIG_INVALID naming the flag
 */
export function parseDoctorOptions(
  flags: { count?: string; "timeout-ms"?: string; "cluster-key-file"?: string },
  env: Record<string, string | undefined> = process.env,
): {
  count: number;
  timeoutMs: number;
  probeId: string;
  clusterKey: string | undefined;
  clusterKeyFile: string | undefined;
} {
  return {
    count: integer("count", flags.count, 10, 1, 10_000),
    timeoutMs: integer("timeout-ms", flags["timeout-ms"], 5000, 10, 600_000),
    probeId: `doctor@${defaultNodeId()}`,
    clusterKey: env.EXO_CLUSTER_KEY || undefined,
    clusterKeyFile: flags["cluster-key-file"] || undefined,
  };
}

/** Where `exo topology` finds a running node's API, and the key it needs (EXO_API_KEY). */
export function parseApiClientOptions(
  flags: { "api-host"?: string; "api-port"?: string },
  env: Record<string, string | undefined> = process.env,
): { baseUrl: string; apiKey: string | undefined } {
  const host = flags["api-host"] || "127.0.0.1";
  const port = integer("api-port", flags["api-port"], DEFAULT_API_PORT, 1, 65535);
  return { baseUrl: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, apiKey: env.EXO_API_KEY || undefined };
}
