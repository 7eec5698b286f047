// A stand-in node for orphan tests: starts a fake runner, prints its pid as one JSON line, then idles
// (optionally with a step in flight) until the test kills this process.
import { createRunnerEngine } from "../../src/engine/runner-client.ts";

const opts = JSON.parse(process.argv[2] ?? "{}") as { stepBusyMs?: number; stepInFlight?: boolean };
const engine = createRunnerEngine({ engine: "fake", fake: { stepBusyMs: opts.stepBusyMs } });
await engine.load({ modelId: "fake", modelDir: "/nonexistent", layerStart: 0, layerEnd: 2, nLayers: 2 });
if (opts.stepInFlight) void engine.step("r", { kind: "tokens", tokens: [1] }, { temperature: 0, topP: 1, topK: 0 }).catch(() => {});
process.stdout.write(`${JSON.stringify({ runnerPid: engine.pid() })}\n`);
setInterval(() => {}, 1000);
