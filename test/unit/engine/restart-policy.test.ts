import { describe, expect, test } from "bun:test";
import { createRestartPolicy } from "../../../src/engine/restart-policy.ts";

describe("runner restart policy", () => {
  test("a first start waits for nothing", () => {
    expect(createRestartPolicy().startDelayMs()).toBe(0);
  });

  test("crashes in a row restart eagerly with a doubling delay up to the cap, then only on demand", () => {
    const policy = createRestartPolicy({ maxEagerRestarts: 3, baseDelayMs: 100, maxDelayMs: 250 });
    const seen: [boolean, number][] = [];
    for (let i = 0; i < 4; i++) seen.push([policy.crashed(), policy.startDelayMs()]);
    expect(seen).toEqual([
      [true, 100],
      [true, 200],
      [true, 250],
      [false, 250],
    ]);
  });

  test("a completed start ends the streak", () => {
    const policy = createRestartPolicy();
    policy.crashed();
    policy.crashed();
    policy.started();
    expect(policy.startDelayMs()).toBe(0);
    expect(policy.crashed()).toBe(true);
    expect(policy.startDelayMs()).toBe(100);
  });
});
