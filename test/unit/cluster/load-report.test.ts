// STATUS `load`: optional, so an old peer's STATUS (without it) still parses and a malformed one is ignored rather
// than failing the STATUS; the reporter tells peers about admission changes (throttled, the last change always
// goes out) and only while its engine holds a shard it is not re-preparing.
import { describe, expect, test } from "bun:test";
import { createAdmissionQueue } from "../../../src/cluster/admission-queue.ts";
import { createLoadReporter } from "../../../src/cluster/load-report.ts";
import { parseStatus } from "../../../src/cluster/messages.ts";
import { createFakeEngine } from "../../../src/engine/fake-engine.ts";
import { createMemoryNetwork } from "../../helpers/memory-transport.ts";
import { waitFor } from "../../helpers/wait.ts";

const OLD_STATUS = { nodeId: "b", modelId: "m", phase: "ready", fraction: 1 };

describe("STATUS load fields", () => {
  test("a STATUS without load (an old peer's) parses as before", () => {
    expect(parseStatus(OLD_STATUS)).toEqual({ nodeId: "b", modelId: "m", phase: "ready", fraction: 1 } as never);
  });

  test("load is parsed when well formed and dropped (not fatal) when not", () => {
    const load = { queued: 3, running: 2, lastBatch: 2, peakBatch: 5 };
    expect(parseStatus({ ...OLD_STATUS, load }).load).toEqual(load);
    expect(parseStatus({ ...OLD_STATUS, load: { queued: 1, running: 0 } }).load).toEqual({ queued: 1, running: 0 });
    for (const bad of [null, "x", [], { queued: -1, running: 0 }, { queued: 1 }, { queued: 1.5, running: 1 }])
      expect(parseStatus({ ...OLD_STATUS, load: bad }).load).toBeUndefined();
  });
});

describe("load reporter", () => {
  async function setup(loaded: boolean, preparing = false) {
    const net = createMemoryNetwork();
    const a = net.add("a");
    const b = net.add("b");
    const engine = createFakeEngine();
    if (loaded) await engine.load({ modelId: "m", modelDir: "/none", layerStart: 0, layerEnd: 1, nLayers: 2 });
    const admission = createAdmissionQueue({ limit: 1, queueSize: 4, waitMs: 60_000 });
    const reporter = createLoadReporter({ transport: a, engine, admission, preparing: () => preparing });
    const heard = createLoadReporter({
      transport: b,
      engine: createFakeEngine(),
      admission: createAdmissionQueue({ limit: 1, queueSize: 1, waitMs: 60_000 }),
      preparing: () => false,
    });
    const statuses: unknown[] = [];
    b.handle("STATUS", (msg) => {
      statuses.push(msg.fields);
      heard.heard(parseStatus(msg.fields));
    });
    return { admission, reporter, heard, statuses };
  }

  test("peers hear the queue grow and drain; the last change always goes out", async () => {
    const { admission, reporter, heard, statuses } = await setup(true);
    const never = new AbortController().signal;
    const first = await admission.acquire(never);
    const queued = [admission.acquire(never), admission.acquire(never)];
    await waitFor(() => heard.peers().a?.queued === 2, { what: "b to hear 2 queued" });
    expect(heard.peers().a).toMatchObject({ running: 1, queued: 2 });
    first.release();
    (await queued[0]!).release();
    (await queued[1]!).release();
    // No flush: the throttle's trailing report carries the last change.
    await waitFor(() => heard.peers().a?.running === 0 && heard.peers().a?.queued === 0, { what: "b to hear 0" });
    // Throttled: five changes, fewer reports; each is a valid STATUS for the shard a holds.
    expect(statuses.length).toBeLessThan(7);
    expect(statuses.at(-1)).toMatchObject({ nodeId: "a", modelId: "m", phase: "ready", fraction: 1 });
    expect(await reporter.local()).toEqual({ queued: 0, running: 0 });
    reporter.stop();
    heard.stop();
  });

  test("no load STATUS while this node downloads more of the loaded model (POST /download); again once it is done", async () => {
    const { admission, reporter, heard, statuses } = await setup(true);
    const own = { nodeId: "a", modelId: "m" } as const;
    reporter.heard(parseStatus({ ...own, phase: "download", fraction: 0.4 }));
    (await admission.acquire(new AbortController().signal)).release();
    await reporter.flush();
    await new Promise((r) => setImmediate(r));
    expect(statuses).toEqual([]);
    reporter.heard(parseStatus({ ...own, phase: "download", fraction: 1 }));
    (await admission.acquire(new AbortController().signal)).release();
    await reporter.flush();
    await waitFor(() => statuses.length === 1, { what: "the load STATUS after the download" });
    reporter.stop();
    heard.stop();
  });

  for (const [what, loaded, preparing] of [
    ["holds no shard", false, false],
    ["is preparing one", true, true],
  ] as const) {
    test(`a node that ${what} sends no load STATUS (it would claim ready)`, async () => {
      const { admission, reporter, heard, statuses } = await setup(loaded, preparing);
      const t = await admission.acquire(new AbortController().signal);
      t.release();
      await reporter.flush();
      // Delivery crosses an event-loop turn: one more turn and anything sent would be here.
      await new Promise((r) => setImmediate(r));
      expect(statuses).toEqual([]);
      reporter.stop();
      heard.stop();
    });
  }
});
