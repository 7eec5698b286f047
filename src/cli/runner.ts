// Hidden `exo runner` verb: the engine child process the node starts itself (src/engine/runner-client.ts).
// Not for people: it speaks frames on stdin/stdout. Heavy modules load only when it runs.
import { defineCommand } from "citty";
import { NodeError } from "../errors.ts";

export default defineCommand({
  meta: { name: "runner", description: "Internal: the engine child process started by a node.", hidden: true },
  args: {
    engine: { type: "string", default: "mlx", description: "mlx | fake" },
    "max-live": { type: "string", description: "live-request limit of the engine" },
    "max-batch": { type: "string", description: "most decode steps in one forward (1: no batching)" },
    "parent-pid": { type: "string", description: "exit when this process is gone" },
    fake: { type: "string", description: "fake engine options as JSON" },
    "log-level": { type: "string", description: "consola level of the node, so both log alike" },
    fault: {
      type: "string",
      description: "test-only fault: abort-on-request:<prefix> | abort-on-token:<id> (default: env EXO_RUNNER_FAULT)",
    },
  },
  async run({ args }) {
    const { setLogLevel } = await import("../log.ts");
    const level = optionalInt(args["log-level"], "--log-level");
    if (level !== undefined) setLogLevel(level);
    const { runRunner } = await import("../engine/runner-main.ts");
    const { parseRunnerFault } = await import("../engine/runner-fault.ts");
    const { runnerFaultFromEnv } = await import("../config/runner-env.ts");
    const fault = args.fault ?? runnerFaultFromEnv();
    if (args.engine !== "mlx" && args.engine !== "fake") {
      throw new NodeError("E_CONFIG_INVALID", `--engine must be mlx or fake, got ${args.engine}`);
    }
    await runRunner({
      engine: args.engine,
      maxLiveRequests: optionalInt(args["max-live"], "--max-live"),
      maxBatch: optionalInt(args["max-batch"], "--max-batch"),
      parentPid: optionalInt(args["parent-pid"], "--parent-pid"),
      fake: args.fake ? JSON.parse(args.fake) : undefined,
      fault: fault ? parseRunnerFault(fault) : undefined,
    });
  },
});

function optionalInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new NodeError("E_CONFIG_INVALID", `${flag} must be a non-negative integer, got ${value}`);
  return n;
}
