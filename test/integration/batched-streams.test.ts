// Issue 14 through real node processes (MLX runners, the embedded exo-tiny-chat, the official openai client):
// concurrent chats are batched on each stage, and every answer is the one the same request gets alone, on one
// node and through a 3-stage pipeline: 8 and 16 at once, requests that join while others decode, stop strings
// that end some early, seeded sampling next to greedy. Afterwards no stage holds anything of any request.
import { afterAll, describe, expect, test } from "bun:test";
import type OpenAI from "openai";
import { startCluster, waitNoRequestState, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();

const MODEL = "exo-tiny-chat";
const MAX_TOKENS = 40;
const clusters: TestCluster[] = [];
afterAll(async () => {
  await Promise.all(clusters.map((c) => c.stop()));
});

interface Ask {
  prompt: string;
  seed?: number;
  stop?: string;
}

// Tasks the embedded model was trained on (configs/default-model/README.md): distinct answers of 3 to 40 bytes.
const PROMPTS = [
  "count from 3 to 9",
  "reverse abcdef",
  "what is 2+3",
  "count from 12 to 17",
  "count from 40 to 47",
  "reverse plum",
  "count from 21 to 26",
  "hello",
  "count from 5 to 12",
  "count from 30 to 36",
  "reverse stone",
  "count from 50 to 57",
  "what is 14+27",
  "count from 8 to 14",
  "count from 44 to 49",
  "count from 15 to 20",
];

/** One streamed chat; `onContent` runs after each content chunk with the count so far. */
async function ask(client: OpenAI, a: Ask, onContent?: (n: number) => void): Promise<string> {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: a.prompt }],
    max_tokens: MAX_TOKENS,
    ...(a.seed === undefined ? { temperature: 0 } : { temperature: 1, seed: a.seed }),
    ...(a.stop === undefined ? {} : { stop: [a.stop] }),
    stream: true,
  });
  let text = "";
  let n = 0;
  for await (const chunk of stream) {
    const piece = chunk.choices[0]?.delta.content ?? "";
    text += piece;
    if (piece !== "") onContent?.(++n);
  }
  return text;
}

/** Each request alone, one after another: the reference answers. */
async function alone(client: OpenAI, asks: Ask[]): Promise<string[]> {
  const out: string[] = [];
  for (const a of asks) out.push(await ask(client, a));
  return out;
}

/** Stop strings cut from the middle of an answer, so the batched request must end early at exactly that spot. */
function withStops(asks: Ask[], answers: string[]): Ask[] {
  return asks.map((a, i) => {
    const text = answers[i]!;
    if (i % 3 !== 0 || text.length < 12) return a;
    return { ...a, stop: text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3) };
  });
}

/** What `a` answers alone, with its stop string applied to the full answer. */
const cut = (answer: string, stop?: string) => (stop === undefined ? answer : answer.slice(0, answer.indexOf(stop)));

async function checkBatched(c: TestCluster, entry: string): Promise<void> {
  const client = c.client(entry);
  const greedy: Ask[] = PROMPTS.map((prompt) => ({ prompt }));
  const reference = await alone(client, greedy);
  // The answers differ from each other, so an answer routed to the wrong request would show.
  expect(new Set(reference).size).toBeGreaterThan(PROMPTS.length / 2);
  expect(reference.filter((r) => r.length >= 12).length).toBeGreaterThan(PROMPTS.length / 2);

  // 8 at once.
  const eight = await Promise.all(greedy.slice(0, 8).map((a) => ask(client, a)));
  expect(eight).toEqual(reference.slice(0, 8));

  // 16: the first 8 start together (some with stop strings); the other 8 join once the first has streamed 4 chunks.
  const asks = withStops(greedy, reference);
  expect(asks.filter((a) => a.stop !== undefined).length).toBeGreaterThan(1);
  let joined: Promise<string[]> | undefined;
  let resolveJoined!: () => void;
  const joinedStarted = new Promise<void>((r) => (resolveJoined = r));
  const first = Promise.all(
    asks.slice(0, 8).map((a, i) =>
      ask(client, a, (n) => {
        if (i === 0 && n === 4 && !joined) {
          joined = Promise.all(asks.slice(8).map((b) => ask(client, b)));
          resolveJoined();
        }
      }),
    ),
  );
  const firstAnswers = await first;
  await joinedStarted;
  const sixteen = [...firstAnswers, ...(await joined!)];
  expect(sixteen).toEqual(asks.map((a, i) => cut(reference[i]!, a.stop)));

  // Seeded sampling next to greedy requests: the seed decides, not the company.
  const sampled: Ask[] = PROMPTS.slice(0, 6).map((prompt, i) => ({ prompt, seed: 100 + i }));
  const sampledAlone = await alone(client, sampled);
  const mixed = await Promise.all([...sampled, ...greedy.slice(6, 12)].map((a) => ask(client, a)));
  expect(mixed.slice(0, 6)).toEqual(sampledAlone);
  expect(mixed.slice(6)).toEqual(reference.slice(6, 12));

  // The requests really shared forwards on every stage (not merely ran one after another).
  for (const n of c.nodes) {
    const state = (await (await fetch(`http://127.0.0.1:${n.apiPort}/debug/state`)).json()) as {
      batch: { peak: number } | null;
    };
    expect(state.batch?.peak ?? 0).toBeGreaterThan(1);
  }
  await waitNoRequestState(c.nodes);
}

describe("concurrent chats batched on real nodes", () => {
  test(
    "one node: 8 and 16 at once, joins mid-way, stop strings and seeded sampling each equal the request alone",
    withNodeLogs(async () => {
      const c = await startCluster([{ id: "solo" }]);
      clusters.push(c);
      await checkBatched(c, "solo");
    }),
    120_000,
  );

  test(
    "a 3-stage pipeline: the same, with every stage batching what it receives",
    withNodeLogs(async () => {
      const c = await startCluster([
        { id: "p1", memoryMb: 4000 },
        { id: "p2", memoryMb: 4000 },
        { id: "p3", memoryMb: 4000 },
      ]);
      clusters.push(c);
      await ask(c.client("p1"), { prompt: "warm up" });
      const cluster = (await (await fetch(`http://127.0.0.1:${c.node("p1").apiPort}/v1/cluster`)).json()) as {
        models: { model: string; stages: { node_id: string }[] }[];
      };
      const stages = cluster.models.find((m) => m.model === MODEL)?.stages.map((s) => s.node_id);
      expect(stages?.sort()).toEqual(["p1", "p2", "p3"]);
      await checkBatched(c, "p1");
    }),
    180_000,
  );
});
