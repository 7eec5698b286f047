// The prepare progress deadline: a node fails once it goes stallMs without a new phase or fraction.
import { describe, expect, test } from "bun:test";
import { errorCode } from "../../../src/errors.ts";
import { asModelId, asNodeId } from "../../../src/ids.ts";
import type { StatusFields } from "../../../src/cluster/messages.ts";
import { createStallWatch, stalledError } from "../../../src/cluster/prepare-watch.ts";

const status = (nodeId: string, phase: StatusFields["phase"], fraction: number): StatusFields => ({
  nodeId: asNodeId(nodeId),
  modelId: asModelId("m"),
  phase,
  fraction,
});

describe("the prepare stall watch", () => {
  test("a node that never reports fails with E_PEER_TIMEOUT naming it and the PREPARE phase", async () => {
    const watch = createStallWatch("m", 30);
    const err = await watch.until("b").catch((e: unknown) => e);
    expect(errorCode(err)).toBe("E_PEER_TIMEOUT");
    expect((err as Error).message).toStartWith(
      "node b made no progress for 30 ms in the PREPARE phase (it never reported a status) of preparing m;",
    );
  });

  test("new fractions keep a node alive; a repeated one does not, and the error names the last phase", async () => {
    const watch = createStallWatch("m", 60);
    let settled = false;
    const failed = watch.until("b").catch((e: unknown) => {
      settled = true;
      return e;
    });
    // 10 reports 20 ms apart: 200 ms in all, over three stall periods, each report a step forward.
    for (let i = 1; i <= 10; i++) {
      await Bun.sleep(20);
      watch.progress(status("b", "download", i / 10));
    }
    expect(settled).toBe(false);
    for (let i = 0; i < 5; i++) watch.progress(status("b", "download", 1));
    const err = (await failed) as Error;
    expect(err.message).toContain("in the download phase (100%)");
  });

  test("done() and stop() end the watch without an error; other models' and nodes' statuses are ignored", async () => {
    const watch = createStallWatch("m", 30);
    let rejected = 0;
    watch.until("b").catch(() => rejected++);
    watch.until("c").catch(() => rejected++);
    watch.progress({ ...status("b", "load", 0.5), modelId: asModelId("other") });
    watch.done("b");
    watch.stop();
    // Two stall periods pass: a timer left running would have rejected by now.
    await Bun.sleep(60);
    expect(rejected).toBe(0);
  });

  test("the message says seconds for long deadlines", () => {
    expect(stalledError("m", "b", 60_000, status("b", "load", 0.25)).message).toStartWith(
      "node b made no progress for 60 s in the load phase (25%) of preparing m;",
    );
  });
});
