// The chat tasks of the embedded default model (exo-tiny-chat): prompts whose answers can be checked,
// a deterministic training stream, and a held-out set whose prompts training never sees.

export type TaskKind = "count" | "reverse" | "add";

export interface TaskExample {
  kind: TaskKind | "greeting" | "repeat";
  prompt: string;
  answer: string;
}

/** Ranges and sizes of the tasks; the model is only expected to handle these. */
export const TASK_LIMITS = {
  countMaxStart: 60,
  countMinNumbers: 2,
  countMaxNumbers: 8,
  addMax: 60,
  reverseMinLetters: 3,
  reverseMaxLetters: 6,
} as const;

/** What the model says to anything that is not a task; greetings teach it to. */
export const HELP_ANSWER = "Hi! Try: count from 3 to 9, reverse abc, what is 2+3";
const GREETINGS = ["hello", "hi", "hey", "help", "who are you", "what can you do", "hello!", "hi there"];

/** A small deterministic PRNG (mulberry32), so the corpus is the same on every machine. */
export function makeRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

/** One random task of `kind` (held-out or not). */
export function sampleTask(kind: TaskKind, rng: () => number): TaskExample {
  const L = TASK_LIMITS;
  if (kind === "count") {
    const start = int(rng, 0, L.countMaxStart);
    const n = int(rng, L.countMinNumbers, L.countMaxNumbers);
    const numbers = Array.from({ length: n }, (_, i) => start + i);
    return { kind, prompt: `count from ${start} to ${start + n - 1}`, answer: numbers.join(" ") };
  }
  if (kind === "reverse") {
    const n = int(rng, L.reverseMinLetters, L.reverseMaxLetters);
    const word = Array.from({ length: n }, () => String.fromCharCode(97 + int(rng, 0, 25))).join("");
    return { kind, prompt: `reverse ${word}`, answer: [...word].reverse().join("") };
  }
  // Small addends are rarer in uniform draws but the hardest to get right; draw more of them.
  const small = rng() < 0.25;
  const a = int(rng, 0, small ? 9 : L.addMax);
  const b = int(rng, 0, L.addMax);
  const [x, y] = rng() < 0.5 ? [a, b] : [b, a];
  return { kind, prompt: `what is ${x}+${y}`, answer: String(x + y) };
}

/** True for the prompts reserved for evaluation (a fixed hash split: about 1 in 8). */
export function isHeldOut(prompt: string): boolean {
  let h = 0x811c9dc5;
  for (let i = 0; i < prompt.length; i++) h = Math.imul(h ^ prompt.charCodeAt(i), 0x01000193);
  return (h >>> 0) % 8 === 0;
}

const KINDS: readonly TaskKind[] = ["count", "reverse", "add"];

/** An endless training stream: tasks (never held-out prompts) and a few greetings. Addition, the slowest to learn, gets the most. */
export function makeTrainingStream(seed: number): () => TaskExample {
  const rng = makeRng(seed);
  return () => {
    if (rng() < 0.03)
      return { kind: "greeting", prompt: GREETINGS[int(rng, 0, GREETINGS.length - 1)]!, answer: HELP_ANSWER };
    for (;;) {
      const r = rng();
      const task = sampleTask(r < 0.3 ? "count" : r < 0.55 ? "reverse" : "add", rng);
      if (!isHeldOut(task.prompt)) return task;
    }
  };
}

const SYSTEM_PROMPTS = ["Be brief.", "You are helpful.", "Answer briefly."];

/** Conversations for training: mostly one turn, some with earlier turns or a system prompt (as a chat UI sends). */
export function makeConversationStream(seed: number): () => { system?: string; turns: TaskExample[] } {
  const rng = makeRng(seed ^ 0x5eed);
  const nextTask = makeTrainingStream(seed);
  return () => {
    const r = rng();
    const turns = Array.from({ length: r < 0.85 ? 1 : 2 }, nextTask);
    return rng() < 0.1 ? { system: SYSTEM_PROMPTS[int(rng, 0, SYSTEM_PROMPTS.length - 1)]!, turns } : { turns };
  };
}

/** `n` distinct held-out tasks, the kinds in turn, drawn with a seed of their own. */
export function heldOutSet(n: number, seed = 20261127): TaskExample[] {
  const rng = makeRng(seed);
  const seen = new Set<string>();
  const out: TaskExample[] = [];
  for (let i = 0; out.length < n; i++) {
    if (i > n * 1000) throw new Error(`held-out set: only ${out.length} of ${n} distinct prompts found`);
    const task = sampleTask(KINDS[out.length % KINDS.length]!, rng);
    if (isHeldOut(task.prompt) && !seen.has(task.prompt)) {
      seen.add(task.prompt);
      out.push(task);
    }
  }
  return out;
}
