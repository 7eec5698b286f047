// `exo run [MODEL] [--prompt TEXT]`: start a node (API included), place and load MODEL on the cluster with
// visible progress, then chat in the terminal, or answer --prompt once on stdout and exit. Thin: flags → node → session.
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { rootLogger, setLogLevel } from "../log.ts";
import { nodeArgs } from "./node-args.ts";
import { parseRunFlags, runSession, type RunBackend } from "./run-session.ts";
import { waitForPeers } from "./wait-peers.ts";

/** consola's info and warn levels. */
const DEFAULT_LOG_LEVEL = 3;
const QUIET_LOG_LEVEL = 1;

export default defineCommand({
  meta: {
    name: "run",
    description:
      "Run a node, place MODEL on the cluster (downloading with progress), then chat, or answer --prompt and exit.",
  },
  args: {
    model: { type: "positional", required: false, description: "model id (default: the embedded exo-tiny-chat)" },
    prompt: { type: "string", description: "answer this once, streamed to stdout, then exit" },
    temperature: { type: "string", description: "sampling temperature 0-2 (default 0: greedy)" },
    "max-tokens": { type: "string", description: "longest answer in tokens (default 1024)" },
    "peer-wait-ms": {
      type: "string",
      description: "how long to wait for the peer file's peers before placing (default 10000)",
    },
    ...nodeArgs,
  },
  async run({ args }) {
    // In a terminal the chat owns the screen, so the node's info lines stay quiet (EXO_LOG_LEVEL=4 brings them back).
    // Set before the node's modules load: each module's tagged logger copies the level when it is created.
    if (process.stdout.isTTY && rootLogger.level === DEFAULT_LOG_LEVEL) setLogLevel(QUIET_LOG_LEVEL);
    const { DEFAULT_MODEL_ID } = await import("../catalog/catalog.ts");
    const { parseNodeOptions } = await import("../config/node-options.ts");
    const { createNode } = await import("../node/node.ts");
    const flags = parseRunFlags(args, DEFAULT_MODEL_ID);
    const options = parseNodeOptions(args);
    // `exo run DIR` serves that directory, as --models DIR would: a local path is the operator's choice.
    const { hasConfigFile } = await import("../models/spec/config-file.ts");
    const isDir = await hasConfigFile(resolve(flags.modelId));
    // A mistyped model id fails here, with suggestions, before the node binds any port or links to a peer.
    if (!isDir) {
      const { resolveModelRef } = await import("../catalog/resolve.ts");
      await resolveModelRef(flags.modelId);
    }
    const node = await createNode(isDir ? { ...options, models: [...options.models, flags.modelId] } : options);
    try {
      await waitForPeers(node.pool, flags.peerWaitMs, (t) => process.stderr.write(t));
      const { inference } = node.services;
      const backend: RunBackend = {
        inference,
        prepare: (modelId, onProgress) => inference.prepare(modelId, onProgress),
      };
      process.exitCode = await runSession(backend, {
        ...flags,
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        signals: process,
      });
    } finally {
      await node.stop();
    }
  },
});
