// Fairness on a link: file bytes (bulk answers) never starve inference frames. However many file chunks are
// waiting, an activation written meanwhile reaches the socket behind at most the one chunk already handed over.
import { describe, expect, test } from "bun:test";
import { BulkLane, type BulkSink } from "../../../src/net/bulk-lane.ts";
import type { OutgoingMessage } from "../../../src/protocol/frame.ts";

/** A connection whose kernel takes one queued frame per drain() call. */
function slowSink() {
  const queue: OutgoingMessage[] = [];
  const wire: string[] = [];
  let waiters: (() => void)[] = [];
  const sink: BulkSink & { drain(): Promise<void> } = {
    closed: false,
    get queuedBytes() {
      return queue.reduce((s, m) => s + (m.body?.byteLength ?? 0) + 1, 0);
    },
    write(msg) {
      queue.push(msg);
    },
    flushed() {
      if (queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    async drain() {
      const msg = queue.shift();
      if (msg) wire.push(String(msg.fields?.name));
      if (queue.length === 0) {
        const w = waiters;
        waiters = [];
        for (const r of w) r();
      }
      await Promise.resolve(); // let the lane's flushed() continuation run
      await Promise.resolve();
    },
  };
  return { sink, wire, queue };
}

const chunk = (name: string): OutgoingMessage => ({ type: "OK", fields: { name }, body: new Uint8Array(1024) });

describe("BulkLane", () => {
  test("inference frames written while file chunks wait go out behind at most one chunk", async () => {
    const { sink, wire, queue } = slowSink();
    const lane = new BulkLane(sink);
    for (let i = 0; i < 8; i++) lane.push(chunk(`file-${i}`));
    // One chunk in the connection, the other seven held in the lane: file bytes in the connection are bounded.
    expect(queue.length).toBe(1);
    expect(lane.pending).toBe(7);
    sink.write({ type: "TENSOR", fields: { name: "act-1" } });
    await sink.drain();
    await sink.drain();
    sink.write({ type: "TOKEN", fields: { name: "tok-1" } });
    while (queue.length > 0 || lane.pending > 0) await sink.drain();
    expect(wire).toEqual([
      "file-0",
      "act-1",
      "file-1",
      "tok-1",
      "file-2",
      "file-3",
      "file-4",
      "file-5",
      "file-6",
      "file-7",
    ]);
    expect(lane.sent).toBe(8);
  });

  test("an answer too large to frame becomes an ERROR naming the request, and the lane goes on", async () => {
    const { sink, wire, queue } = slowSink();
    const inner = sink.write.bind(sink);
    sink.write = (msg) => {
      if (msg.fields?.name === "huge") throw new Error("frame too large");
      inner(msg);
    };
    const lane = new BulkLane(sink);
    lane.push({ type: "OK", fields: { name: "huge", id: 7 } });
    expect(queue[0]?.type).toBe("ERROR");
    expect(queue[0]?.fields?.id).toBe(7);
    lane.push(chunk("next"));
    while (queue.length > 0 || lane.pending > 0) await sink.drain();
    expect(wire.at(-1)).toBe("next");
  });
});
