import { describe, expect, test } from "bun:test";
import { PendingCalls } from "../../src/pending-calls.ts";

/** Settles within a few event-loop turns, or reports that it is still waiting. */
async function state<T>(p: Promise<T>): Promise<{ value?: T; error?: string } | "waiting"> {
  const pending = Symbol("waiting");
  const out = await Promise.race([
    p.then(
      (value) => ({ value }),
      (e: Error) => ({ error: e.message }),
    ),
    Bun.sleep(5).then(() => pending),
  ]);
  return out === pending ? "waiting" : (out as { value?: T; error?: string });
}

describe("pending calls", () => {
  test("an answer settles its own call only, once", async () => {
    const calls = new PendingCalls<number, string>();
    const a = calls.add(1);
    const b = calls.add(2);
    expect(calls.resolve(2, "two")).toBe(true);
    expect(calls.resolve(2, "again")).toBe(false);
    expect(await state(b)).toEqual({ value: "two" });
    expect(await state(a)).toBe("waiting");
    expect(calls.size).toBe(1);
    expect(calls.reject(1, new Error("no"))).toBe(true);
    expect(await state(a)).toEqual({ error: "no" });
    expect(calls.size).toBe(0);
  });

  test("a deadline rejects with the error its handler returns, and a late answer finds nothing", async () => {
    const calls = new PendingCalls<number, string>();
    const p = calls.add(7, { timeoutMs: 1, onTimeout: () => new Error("too late") });
    expect(await state(p)).toEqual({ error: "too late" });
    expect(calls.resolve(7, "late")).toBe(false);
  });

  test("a deadline handler that returns nothing leaves the call to be settled by whoever it called", async () => {
    const calls = new PendingCalls<number, string>();
    let fired = 0;
    const p = calls.add(1, { timeoutMs: 1, onTimeout: () => void fired++ });
    expect(await state(p)).toBe("waiting");
    expect(fired).toBe(1);
    calls.rejectAll(new Error("killed"));
    expect(await state(p)).toEqual({ error: "killed" });
  });

  test("an answer before the deadline clears it", async () => {
    const calls = new PendingCalls<number, string>();
    let fired = 0;
    const p = calls.add(1, { timeoutMs: 3, onTimeout: () => new Error(`fired ${++fired}`) });
    calls.resolve(1, "ok");
    await Bun.sleep(10);
    expect(await state(p)).toEqual({ value: "ok" });
    expect(fired).toBe(0);
  });

  test("close rejects every waiting call and every later one; rejectAll leaves room for new calls", async () => {
    const calls = new PendingCalls<number, string>();
    const first = calls.add(1);
    calls.rejectAll(new Error("restart"));
    expect(await state(first)).toEqual({ error: "restart" });
    const second = calls.add(2);
    expect(await state(second)).toBe("waiting");
    calls.close(new Error("gone"));
    expect(await state(second)).toEqual({ error: "gone" });
    expect(await state(calls.add(3))).toEqual({ error: "gone" });
    expect(calls.size).toBe(0);
  });

  test("each call keeps its own data until it settles", () => {
    const calls = new PendingCalls<number, string, string>();
    void calls.add(1, { meta: "progress of 1" });
    expect(calls.meta(1)).toBe("progress of 1");
    calls.resolve(1, "done");
    expect(calls.meta(1)).toBeUndefined();
  });
});
