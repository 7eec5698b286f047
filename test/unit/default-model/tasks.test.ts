// The default model's corpus: answers are right, the held-out prompts never appear in training,
// and both streams are deterministic for their seeds.
import { describe, expect, test } from "bun:test";
import {
  HELP_ANSWER,
  TASK_LIMITS,
  heldOutSet,
  isHeldOut,
  makeConversationStream,
  makeTrainingStream,
  type TaskExample,
} from "../../../scripts/default-model/tasks.ts";

/** Solves a prompt independently of the generator. */
function solve(prompt: string): string | undefined {
  let m = /^count from (\d+) to (\d+)$/.exec(prompt);
  if (m) {
    const [a, b] = [Number(m[1]), Number(m[2])];
    return Array.from({ length: b - a + 1 }, (_, i) => a + i).join(" ");
  }
  m = /^reverse ([a-z]+)$/.exec(prompt);
  if (m) return m[1]!.split("").reverse().join("");
  m = /^what is (\d+)\+(\d+)$/.exec(prompt);
  if (m) return String(Number(m[1]) + Number(m[2]));
  return undefined;
}

function inLimits(t: TaskExample): boolean {
  const nums = (t.prompt.match(/\d+/g) ?? []).map(Number);
  const L = TASK_LIMITS;
  if (t.kind === "count") {
    const n = nums[1]! - nums[0]! + 1;
    return nums[0]! <= L.countMaxStart && n >= L.countMinNumbers && n <= L.countMaxNumbers;
  }
  if (t.kind === "add") return nums.every((x) => x <= L.addMax);
  const word = t.prompt.slice("reverse ".length);
  return word.length >= L.reverseMinLetters && word.length <= L.reverseMaxLetters;
}

describe("default model tasks", () => {
  const next = makeTrainingStream(1);
  const training = Array.from({ length: 20_000 }, next);

  test("every training answer is right and within the documented limits", () => {
    for (const t of training) {
      if (t.kind === "greeting") expect(t.answer).toBe(HELP_ANSWER);
      else {
        expect(t.answer).toBe(solve(t.prompt)!);
        expect(inLimits(t)).toBe(true);
      }
    }
  });

  test("the training stream never yields a held-out task prompt, and covers every kind", () => {
    // Greetings are not tasks: they are always trained and never scored.
    expect(training.filter((t) => t.kind !== "greeting" && isHeldOut(t.prompt))).toEqual([]);
    expect(new Set(training.map((t) => t.kind))).toEqual(new Set(["count", "reverse", "add", "greeting"]));
  });

  test("the held-out set is distinct, held out, correct and balanced over the kinds", () => {
    const set = heldOutSet(150);
    expect(new Set(set.map((t) => t.prompt)).size).toBe(150);
    const trainingPrompts = new Set(training.map((t) => t.prompt));
    for (const t of set) {
      expect(isHeldOut(t.prompt)).toBe(true);
      expect(trainingPrompts.has(t.prompt)).toBe(false);
      expect(t.answer).toBe(solve(t.prompt)!);
      expect(inLimits(t)).toBe(true);
    }
    for (const kind of ["count", "reverse", "add"]) expect(set.filter((t) => t.kind === kind)).toHaveLength(50);
  });

  test("streams are deterministic for a seed and differ between seeds", () => {
    expect(heldOutSet(30)).toEqual(heldOutSet(30));
    expect(heldOutSet(30, 1)).not.toEqual(heldOutSet(30, 2));
    const a = makeConversationStream(5);
    const b = makeConversationStream(5);
    const chats = Array.from({ length: 50 }, a);
    expect(Array.from({ length: 50 }, b)).toEqual(chats);
    expect(chats.some((c) => c.turns.length > 1) && chats.some((c) => c.system !== undefined)).toBe(true);
  });
});
