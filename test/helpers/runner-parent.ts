// A stand-in node for orphan tests: starts a fake runner, prints its pid as one JSON line, then idles
// (optionally with a step in flight) until the test kills this process, or just ends (`finish`).
import { rootLogger } from "../../src/log.ts";

// Tagged loggers copy the level when created, so quiet the root before the engine modules load.
rootLogger.level = 1;
const { createRunnerEngine } = await import("../../src/engine/runner-client.ts");

const opts = JSON.parse(process.argv[2] ?? "{}") as {
  stepBusyMs?: number;
  stepInFlight?: boolean;
  finish?: boolean;
  handleSigint?: boolean;
};
const engine = createRunnerEngine({ engine: "fake", fake: { stepBusyMs: opts.stepBusyMs } });
await engine.load({ modelId: "fake", modelDir: "/nonexistent", layerStart: 0, layerEnd: 2, nLayers: 2 });
if (opts.stepInFlight)
  void engine.step("r", { kind: "tokens", tokens: [1] }, { temperature: 0, topP: 1, topK: 0 }).catch(() => {});
// Like the chat REPL, SIGINT means "stop the reply": afterwards the same runner must still answer.
if (opts.handleSigint) {
  process.on("SIGINT", async () => {
    const out = await engine.step(
      `after-sigint-${Date.now()}`,
      { kind: "tokens", tokens: [2] },
      { temperature: 0, topP: 1, topK: 0 },
    );
    process.stdout.write(`${JSON.stringify({ afterSigint: out.kind, runnerPid: engine.pid() })}\n`);
  });
}
process.stdout.write(`${JSON.stringify({ runnerPid: engine.pid() })}\n`);
// With `finish`, this script simply ends without closing the engine: the process must still exit.
if (!opts.finish) setInterval(() => {}, 1000);
