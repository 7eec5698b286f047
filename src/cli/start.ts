// `exo start` (and bare `exo`): run a node until SIGINT/SIGTERM, then shut down cleanly (links closed, exit 0).
// Prints the ready line `{"event":"ready","node_id":…,"port":…,"api_port":…}` on stdout once serving.
import { defineCommand } from "citty";
import { nodeArgs } from "./node-args.ts";

export default defineCommand({
  meta: { name: "start", description: "Run a node: link to the peers in the peer file and serve the API." },
  args: nodeArgs,
  async run({ args }) {
    const { parseNodeOptions } = await import("../config/node-options.ts");
    const { createNode } = await import("../node/node.ts");
    const node = await createNode(parseNodeOptions(args));
    const stopped = Promise.withResolvers<string>();
    const onSignal = (signal: string) => () => stopped.resolve(signal);
    const handlers = { SIGINT: onSignal("SIGINT"), SIGTERM: onSignal("SIGTERM") };
    process.on("SIGINT", handlers.SIGINT);
    process.on("SIGTERM", handlers.SIGTERM);
    // Machine-readable: straight to stdout, never through the logger (which writes to stderr).
    process.stdout.write(
      `${JSON.stringify({ event: "ready", node_id: node.nodeId, port: node.port, api_port: node.apiPort })}\n`,
    );
    await stopped.promise;
    // Running requests finish (or, past --drain-ms, fail over onto the other nodes when the links close).
    await node.drain();
    await node.stop();
    process.off("SIGINT", handlers.SIGINT);
    process.off("SIGTERM", handlers.SIGTERM);
  },
});
