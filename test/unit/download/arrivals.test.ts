// A blob still arriving: a reader waiting for its bytes is woken by each write (no polling), gives up only when
// the bytes stop coming for the stall time, and looks again when the fetch ends.
import { describe, expect, test } from "bun:test";
import { arrival, arrivedBytes, endArrival, startArrival, waitForBytes } from "../../../src/download/arrivals.ts";

describe("arrivals", () => {
  test("a wait is woken by the write that brings its bytes, not by a timer", async () => {
    startArrival("/b/1");
    const wait = waitForBytes("/b/1", 300, 10_000, 60_000);
    let settled = false;
    void wait.then(() => {
      settled = true;
    });
    arrivedBytes("/b/1", 100);
    await Promise.resolve();
    expect(settled).toBe(false);
    const woke = performance.now();
    arrivedBytes("/b/1", 300);
    expect(await wait).toBe("ready");
    // Woken by the notification itself: far sooner than any timer the wait holds (10 s).
    expect(performance.now() - woke).toBeLessThan(1_000);
    expect(arrival("/b/1")?.bytes).toBe(300);
    endArrival("/b/1");
  });

  test("bytes that keep coming extend the wait; bytes that stop end it as stalled", async () => {
    startArrival("/b/2");
    const wait = waitForBytes("/b/2", 1_000, 150, 60_000);
    let result: string | undefined;
    void wait.then((r) => {
      result = r;
    });
    // Progress every 50 ms for 400 ms in all: longer than the 150 ms stall time, yet never stalled.
    for (let i = 1; i <= 8; i++) {
      await Bun.sleep(50);
      arrivedBytes("/b/2", i * 10);
    }
    expect(result).toBeUndefined();
    expect(await wait).toBe("stalled"); // then no byte for 150 ms
    endArrival("/b/2");
  });

  test("a fetch that ends wakes its readers with ended", async () => {
    startArrival("/b/3");
    const wait = waitForBytes("/b/3", 10, 10_000, 60_000);
    endArrival("/b/3");
    expect(await wait).toBe("ended");
    expect(await waitForBytes("/b/3", 10, 10_000, 60_000)).toBe("ended");
    expect(arrival("/b/3")).toBeUndefined();
  });
});
