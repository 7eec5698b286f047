// The node flags shared by `exo start` and `exo run` (DESIGN §4), as citty arg definitions.
// Values stay strings here; src/config/node-options.ts validates and converts them.
import type { ArgsDef } from "citty";

/** citty args of the node flags; spread into a command's `args`. */
export const nodeArgs = {
  config: { type: "string", description: "peer file (YAML or exo's JSON), hot-reloaded" },
  "node-id": { type: "string", description: "this node's id (default: the host name)" },
  host: { type: "string", description: "address for peer links (default 0.0.0.0)" },
  port: {
    type: "string",
    description: "TCP port for peer links (default: the peer file's entry, else 50051; 0 = any free port)",
  },
  "api-host": { type: "string", description: "address for the HTTP API (default 0.0.0.0)" },
  "api-port": { type: "string", description: "HTTP API port (default 52415; 0 = any free port)" },
  "models-dir": { type: "string", description: "Hugging Face hub cache for model files" },
  "health-interval-ms": { type: "string", description: "period of health checks on every peer (default 5000)" },
  "health-timeout-ms": {
    type: "string",
    description: "deadline of one health check (default 5000, at most the interval)",
  },
  "request-timeout-ms": { type: "string", description: "default deadline of a request to a peer (default 30000)" },
  "prepare-stall-ms": {
    type: "string",
    description: "fail a prepare when a node shows no download or load progress for this long (default 60000)",
  },
  "max-failovers": {
    type: "string",
    description: "failovers one request may take onto the nodes still up when a stage goes down (default 3, 0: none)",
  },
  "recovery-ms": {
    type: "string",
    description: "longest one failover may take, from the failure to the next token (default 120000)",
  },
  "drain-ms": {
    type: "string",
    description: "on SIGTERM, longest to wait for running requests before exiting; the rest fail over (default 30000)",
  },
  "max-live": {
    type: "string",
    description: "requests generating at once on this node (the engine's live-request cap; default 32)",
  },
  "queue-size": {
    type: "string",
    description: "requests waiting in FIFO order beyond --max-live; one more gets HTTP 429 (default 256, 0: none)",
  },
  "kv-cache-mb": {
    type: "string",
    description:
      "KV-cache MB the running requests may hold (prompt + max_tokens each); beyond it they queue (default: not counted)",
  },
  "max-frame-bytes": { type: "string", description: "largest frame payload accepted (default 268435456)" },
  "cluster-key-file": {
    type: "string",
    description: "file holding the cluster key (overrides EXO_CLUSTER_KEY and the peer file's cluster_key)",
  },
  models: {
    type: "string",
    description:
      "also serve these models besides the catalog: local directories or Hugging Face repo ids, comma-separated",
  },
  // Test knobs (src/cluster/README.md): the fake engine, its step delay, and a reported memory size. Hidden from
  // --help (HIDDEN_FLAGS, src/cli/usage.ts); the README lists them as such.
  engine: { type: "string", description: "engine: mlx (default) or fake (tests)" },
  "fake-step-ms": { type: "string", description: "fake engine delay per step (tests)" },
  "memory-mb": { type: "string", description: "report this memory in MB instead of the detected amount (tests)" },
  "max-batch": {
    type: "string",
    description: "most decode steps in one forward (default 32; 1: no batching; benchmarks)",
  },
} as const satisfies ArgsDef;

/** Flags that parse as usual but stay out of `--help` and usage screens: knobs for tests only. */
export const HIDDEN_FLAGS: readonly string[] = ["engine", "fake-step-ms", "memory-mb", "max-batch"];
