// The bytes that partly received big frames may hold across every link of a node: a stranger announcing many
// huge frames on many connections is refused once the total is reached, instead of reserving gigabytes.
import type { ReceiveBudget } from "../protocol/frame.ts";

/** At least 1 GiB, and room for two frames of the largest size allowed. */
export function defaultBudgetBytes(maxFrameBytes: number): number {
  return Math.max(1024 * 1024 * 1024, 2 * maxFrameBytes);
}

export function createReceiveBudget(limitBytes: number): ReceiveBudget & { readonly heldBytes: number } {
  let held = 0;
  return {
    get heldBytes() {
      return held;
    },
    reserve(bytes) {
      if (held + bytes > limitBytes) return false;
      held += bytes;
      return true;
    },
    release(bytes) {
      held = Math.max(0, held - bytes);
    },
    describe: () => `${held} of ${limitBytes} bytes`,
  };
}
