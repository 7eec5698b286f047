// The admission queue on its own: slots up to the limit, then FIFO waiting up to the bound, a refusal beyond it,
// a cancelled or expired waiter leaving at once (the next one gets the slot), and the optional cost budget.
import { describe, expect, test } from "bun:test";
import { errorCode } from "../../../src/errors.ts";
import { createAdmissionQueue, type AdmissionTicket } from "../../../src/cluster/admission-queue.ts";

const never = () => new AbortController().signal;
const HOUR = 3_600_000;

/** Records the order in which acquires are granted. */
function track(p: Promise<AdmissionTicket>, name: string, order: string[]) {
  return p.then((t) => {
    order.push(name);
    return t;
  });
}

describe("admission queue", () => {
  test("grants up to the limit at once, then queues and grants in FIFO order as slots free", async () => {
    const q = createAdmissionQueue({ limit: 2, queueSize: 3, waitMs: HOUR });
    const order: string[] = [];
    const a = await track(q.acquire(never()), "a", order);
    const b = await track(q.acquire(never()), "b", order);
    const c = track(q.acquire(never()), "c", order);
    const d = track(q.acquire(never()), "d", order);
    const e = track(q.acquire(never()), "e", order);
    expect(q.stats()).toMatchObject({ running: 2, queued: 3, peakQueued: 3, limit: 2, queueSize: 3 });
    b.release();
    (await c).release();
    a.release();
    const [dt, et] = await Promise.all([d, e]);
    expect(order).toEqual(["a", "b", "c", "d", "e"]);
    expect(q.stats()).toMatchObject({ running: 2, queued: 0 });
    dt.release();
    et.release();
    expect(q.stats()).toMatchObject({ running: 0, queued: 0, peakQueued: 3, refused: 0 });
  });

  test("a request beyond the queue's bound is refused at once with E_CAPACITY; the queued ones are not", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 2, waitMs: HOUR });
    const a = await q.acquire(never());
    const queued = [q.acquire(never()), q.acquire(never())];
    const err = await q.acquire(never()).catch((e: unknown) => e);
    expect(errorCode(err)).toBe("E_CAPACITY");
    expect((err as Error).message).toContain("--queue-size 2");
    expect(q.stats()).toMatchObject({ running: 1, queued: 2, refused: 1 });
    a.release();
    (await queued[0]!).release();
    (await queued[1]!).release();
    expect(q.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  test("queue size 0: the request beyond the limit is refused", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 0, waitMs: HOUR });
    const a = await q.acquire(never());
    expect(errorCode(await q.acquire(never()).catch((e: unknown) => e))).toBe("E_CAPACITY");
    a.release();
    (await q.acquire(never())).release();
  });

  test("a waiter whose signal aborts leaves the queue at once with E_CANCELLED and the next one gets the slot", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 4, waitMs: HOUR });
    const a = await q.acquire(never());
    const gone = new AbortController();
    const cancelled = q.acquire(gone.signal).catch((e: unknown) => e);
    const next = q.acquire(never());
    expect(q.stats().queued).toBe(2);
    gone.abort();
    expect(q.stats().queued).toBe(1);
    expect(errorCode(await cancelled)).toBe("E_CANCELLED");
    a.release();
    const t = await next;
    expect(q.stats()).toMatchObject({ running: 1, queued: 0 });
    t.release();
    expect(q.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  test("an already aborted signal is refused without queueing", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 4, waitMs: HOUR });
    const c = new AbortController();
    c.abort();
    expect(errorCode(await q.acquire(c.signal).catch((e: unknown) => e))).toBe("E_CANCELLED");
    expect(q.stats()).toMatchObject({ running: 0, queued: 0 });
  });

  test("a wait past waitMs fails with E_CAPACITY and leaves the queue", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 4, waitMs: 30 });
    const a = await q.acquire(never());
    const err = await q.acquire(never()).catch((e: unknown) => e);
    expect(errorCode(err)).toBe("E_CAPACITY");
    expect((err as Error).message).toContain("waited 30 ms");
    expect(q.stats()).toMatchObject({ running: 1, queued: 0, refused: 1 });
    a.release();
  });

  test("release is idempotent: a double release frees one slot only", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 4, waitMs: HOUR });
    const a = await q.acquire(never());
    const b = q.acquire(never());
    const c = q.acquire(never());
    a.release();
    a.release();
    await b;
    expect(q.stats()).toMatchObject({ running: 1, queued: 1 });
    (await b).release();
    (await c).release();
  });

  test("with a budget, costs that do not fit wait in FIFO order (no overtaking) and a lone request always runs", async () => {
    const q = createAdmissionQueue({ limit: 10, queueSize: 10, waitMs: HOUR, budget: 100 });
    const order: string[] = [];
    const big = await track(q.acquire(never(), 80), "big", order);
    const bigger = track(q.acquire(never(), 60), "bigger", order);
    // Would fit (80 + 10 <= 100) but must not overtake the request queued before it.
    const small = track(q.acquire(never(), 10), "small", order);
    expect(q.stats()).toMatchObject({ running: 1, queued: 2, reserved: 80, budget: 100 });
    big.release();
    await Promise.all([bigger, small]);
    expect(order).toEqual(["big", "bigger", "small"]);
    expect(q.stats()).toMatchObject({ running: 2, reserved: 70 });
    (await bigger).release();
    (await small).release();
    // Larger than the whole budget: runs alone rather than never.
    const huge = await q.acquire(never(), 500);
    expect(q.stats()).toMatchObject({ running: 1, reserved: 500 });
    huge.release();
  });

  test("a cancelled head that held the others back lets them start", async () => {
    const q = createAdmissionQueue({ limit: 10, queueSize: 10, waitMs: HOUR, budget: 100 });
    const running = await q.acquire(never(), 50);
    const head = new AbortController();
    const blocked = q.acquire(head.signal, 90).catch((e: unknown) => e);
    const behind = q.acquire(never(), 40);
    head.abort();
    expect(errorCode(await blocked)).toBe("E_CANCELLED");
    (await behind).release();
    running.release();
    expect(q.stats()).toMatchObject({ running: 0, queued: 0, reserved: 0 });
  });

  test("onChange hears every admission, queueing and release", async () => {
    const q = createAdmissionQueue({ limit: 1, queueSize: 1, waitMs: HOUR });
    const seen: string[] = [];
    const off = q.onChange(() => seen.push(`${q.stats().running}/${q.stats().queued}`));
    const a = await q.acquire(never());
    const b = q.acquire(never());
    a.release();
    (await b).release();
    off();
    expect(seen).toEqual(["1/0", "1/1", "1/0", "0/0"]);
  });
});
