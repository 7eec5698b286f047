// Test-only fault hook of the runner (`exo runner --fault SPEC`): which step or load must crash the runner
// for real. Pure: parsing and matching (the caller checks files); the crash itself is native-abort.ts.
import { NodeError } from "../errors.ts";
import type { StageInput } from "./types.ts";

/**
 * `abort-on-request:<prefix>`: a step whose request id has that prefix; `abort-on-token:<id>`: a step whose
 * tokens hold that id; `abort-on-load-if-file:<path>`: a load while that file exists (so a test can arm it later).
 */
export type RunnerFault =
  | { kind: "abort-on-request"; prefix: string }
  | { kind: "abort-on-token"; token: number }
  | { kind: "abort-on-load-if-file"; path: string };

const FORMS = "abort-on-request:<id prefix>, abort-on-token:<token id> or abort-on-load-if-file:<path>";

/** @throws NodeError E_CONFIG_INVALID when `spec` is neither form. */
export function parseRunnerFault(spec: string): RunnerFault {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? "" : spec.slice(colon + 1);
  if (kind === "abort-on-request" && arg.length > 0) return { kind, prefix: arg };
  if (kind === "abort-on-token" && /^\d+$/.test(arg)) return { kind, token: Number(arg) };
  if (kind === "abort-on-load-if-file" && arg.length > 0) return { kind, path: arg };
  throw new NodeError("E_CONFIG_INVALID", `runner fault "${spec}" must be ${FORMS}`);
}

/** True when this step must trigger the fault. */
export function matchesFault(fault: RunnerFault, requestId: string, input: StageInput): boolean {
  if (fault.kind === "abort-on-request") return requestId.startsWith(fault.prefix);
  if (fault.kind === "abort-on-token") return input.kind === "tokens" && input.tokens.includes(fault.token);
  return false;
}
