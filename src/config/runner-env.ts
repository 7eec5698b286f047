// The engine runner's environment: the test-only fault hook EXO_RUNNER_FAULT (src/engine/README.md).
// A node passes its environment to its runner, so setting it on `exo start` arms the runner.

/** The fault spec to arm in the runner (`abort-on-request:<prefix>` | `abort-on-token:<id>`), if any. */
export function runnerFaultFromEnv(env: Record<string, string | undefined> = process.env): string | undefined {
  const spec = env.EXO_RUNNER_FAULT?.trim();
  return spec ? spec : undefined;
}
