// The embedded default model (exo-tiny-chat), run through the engine (not the training code), greedy,
// on held-out prompts it never saw in training: it must answer at least 90% of them exactly.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { HELP_ANSWER, heldOutSet } from "../../scripts/default-model/tasks.ts";
import { WEATHER_TOOL } from "../../scripts/default-model/tool-tasks.ts";
import type { TemplateMessage } from "../../src/tokenizer/chat-template.ts";
import { createLocalEngine, type LocalEngine } from "../../src/engine/local-engine.ts";
import { createDetokenizer } from "../../src/tokenizer/detokenizer.ts";
import { loadTokenizer, type Tokenizer } from "../../src/tokenizer/tokenizer.ts";

const MODEL_DIR = join(import.meta.dir, "../../configs/default-model");
const HELD_OUT = 100;
const MAX_NEW_TOKENS = 32;
const GREEDY = { temperature: 0, topP: 1, topK: 0 };

let engine: LocalEngine;
let tok: Tokenizer;

beforeAll(async () => {
  tok = await loadTokenizer(MODEL_DIR);
  const config = (await Bun.file(join(MODEL_DIR, "config.json")).json()) as { num_hidden_layers: number };
  engine = createLocalEngine();
  const nLayers = config.num_hidden_layers;
  await engine.load({ modelId: "exo-tiny-chat", modelDir: MODEL_DIR, layerStart: 0, layerEnd: nLayers, nLayers });
});
afterAll(async () => {
  await engine?.close();
});

/** Greedy chat answer, detokenized as the API streams it; `tools` go to the chat template. */
async function answer(
  requestId: string,
  prompt: string | TemplateMessage[],
  maxTokens = MAX_NEW_TOKENS,
  tools?: readonly object[],
): Promise<string> {
  const detok = createDetokenizer(tok);
  const messages = typeof prompt === "string" ? [{ role: "user", content: prompt }] : prompt;
  let input = tok.encodeChat(messages, tools ? { tools } : {});
  let text = "";
  try {
    for (let i = 0; i < maxTokens; i++) {
      const out = await engine.step(requestId, { kind: "tokens", tokens: input }, GREEDY);
      if (out.kind !== "token") throw new Error(`the only stage returned ${out.kind}, not a token`);
      if (tok.eosIds.has(out.token)) break;
      text += detok.push(out.token);
      input = [out.token];
    }
  } finally {
    await engine.end(requestId);
  }
  return text + detok.flush();
}

test(`answers at least 90% of ${HELD_OUT} held-out prompts exactly`, async () => {
  const tasks = heldOutSet(HELD_OUT);
  const misses: string[] = [];
  const byKind = new Map<string, { right: number; total: number }>();
  for (const [i, t] of tasks.entries()) {
    const got = await answer(`held-out-${i}`, t.prompt);
    const k = byKind.get(t.kind) ?? { right: 0, total: 0 };
    k.total++;
    if (got === t.answer) k.right++;
    else misses.push(`${t.prompt} → ${JSON.stringify(got)} (want ${JSON.stringify(t.answer)})`);
    byKind.set(t.kind, k);
  }
  const right = tasks.length - misses.length;
  const kinds = [...byKind].map(([kind, k]) => `${kind} ${k.right}/${k.total}`).join(", ");
  console.log(
    `exo-tiny-chat held-out score: ${right}/${tasks.length} = ${((100 * right) / tasks.length).toFixed(1)}% (${kinds})`,
  );
  for (const miss of misses.slice(0, 10)) console.log(`  miss: ${miss}`);
  expect(await engine.liveRequests()).toBe(0);
  expect(right / tasks.length).toBeGreaterThanOrEqual(0.9);
}, 120_000);

test("answers a greeting with its help text and stops at <|end|>", async () => {
  // Room for more than the help text: an exact match means it ended there on its own.
  expect(await answer("greeting", "hello", 2 * HELP_ANSWER.length)).toBe(HELP_ANSWER);
});

// Its chat template renders offered tools as a system line the weights never saw; the tasks still come out.
test("with a tool offered, the old tasks are still answered", async () => {
  const tasks = heldOutSet(30, 31);
  let right = 0;
  for (const [i, t] of tasks.entries())
    if ((await answer(`with-tools-${i}`, t.prompt, MAX_NEW_TOKENS, [WEATHER_TOOL])) === t.answer) right++;
  console.log(`exo-tiny-chat with tools offered: ${right}/${tasks.length} old tasks exact`);
  expect(right / tasks.length).toBeGreaterThanOrEqual(0.8);
}, 120_000);
