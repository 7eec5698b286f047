// The prepare progress deadline: a node fails once it goes stallMs without a new phase or fraction.
// Driven by a manual clock, so the test is exact whatever the machine's load.
import { describe, expect, test } from "bun:test";
import { errorCode } from "../../../src/errors.ts";
import { asModelId, asNodeId } from "../../../src/ids.ts";
import type { StatusFields } from "../../../src/cluster/messages.ts";
import { createStallWatch, stalledError, type StallTimers } from "../../../src/cluster/prepare-watch.ts";

const status = (nodeId: string, phase: StatusFields["phase"], fraction: number): StatusFields => ({
  nodeId: asNodeId(nodeId),
  modelId: asModelId("m"),
  phase,
  fraction,
});

/** A clock that moves only when told: advance(ms) runs every timer that falls due. */
function manualClock(): StallTimers & { advance(ms: number): Promise<void> } {
  let now = 0;
  let next = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  return {
    set(fn, ms) {
      pending.set(++next, { at: now + ms, fn });
      return next;
    },
    clear(handle) {
      pending.delete(handle as number);
    },
    async advance(ms) {
      now += ms;
      for (const [id, t] of [...pending].sort((a, b) => a[1].at - b[1].at)) {
        if (t.at > now) continue;
        pending.delete(id);
        t.fn();
      }
      await Promise.resolve(); // let rejections reach their handlers
    },
  };
}

/** A promise's state right now: "pending", or what it settled with. */
function tracked(p: Promise<unknown>): { settled(): unknown } {
  let state: unknown = "pending";
  p.catch((e: unknown) => {
    state = e;
  });
  return { settled: () => state };
}

describe("the prepare stall watch", () => {
  test("a node that never reports fails with E_PEER_TIMEOUT naming it and the PREPARE phase", async () => {
    const clock = manualClock();
    const watch = createStallWatch("m", 60_000, clock);
    const b = tracked(watch.until("b"));
    await clock.advance(59_999);
    expect(b.settled()).toBe("pending");
    await clock.advance(1);
    expect(errorCode(b.settled())).toBe("E_PEER_TIMEOUT");
    expect((b.settled() as Error).message).toStartWith(
      "node b made no progress for 60 s in the PREPARE phase (it never reported a status) of preparing m;",
    );
  });

  test("new fractions keep a node alive past many periods; a repeated one does not, and the error names the phase", async () => {
    const clock = manualClock();
    const watch = createStallWatch("m", 1000, clock);
    const b = tracked(watch.until("b"));
    for (let i = 1; i <= 10; i++) {
      await clock.advance(900);
      watch.progress(status("b", "download", i / 10));
    }
    expect(b.settled()).toBe("pending"); // 9 s, nine periods, each with a step forward
    await clock.advance(500);
    watch.progress(status("b", "download", 1)); // the same fraction again: not progress
    await clock.advance(500);
    expect((b.settled() as Error).message).toContain("in the download phase (100%)");
  });

  test("done() and stop() end the watch without an error; another model's status is no progress", async () => {
    const clock = manualClock();
    const watch = createStallWatch("m", 1000, clock);
    const b = tracked(watch.until("b"));
    const d = tracked(watch.until("d"));
    await clock.advance(900);
    watch.progress({ ...status("d", "load", 0.5), modelId: asModelId("other") });
    watch.done("b");
    await clock.advance(100);
    expect(b.settled()).toBe("pending");
    expect(errorCode(d.settled())).toBe("E_PEER_TIMEOUT");
    const c = tracked(watch.until("c"));
    watch.stop();
    await clock.advance(10_000);
    expect(c.settled()).toBe("pending");
  });

  test("the message says milliseconds for short deadlines and names the load phase", () => {
    expect(stalledError("m", "b", 1500, status("b", "load", 0.25)).message).toStartWith(
      "node b made no progress for 1.5 s in the load phase (25%) of preparing m;",
    );
    expect(stalledError("m", "b", 250).message).toContain("no progress for 250 ms");
  });
});
