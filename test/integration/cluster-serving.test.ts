// Three real nodes with the fake engine, driven by the official openai client: concurrency, a client that
// disconnects, and a stage killed mid-request. Request state is read from each node's GET /debug/state.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startCluster, waitNoRequestState, type TestCluster } from "../helpers/cluster-nodes.ts";
import { useNodes, withNodeLogs } from "../helpers/spawn-node.ts";

useNodes();

const MODEL = "exo-tiny-chat";
let cluster: TestCluster;

beforeAll(async () => {
  // Uneven memory: placement gives a 2/1/1 split of the 4 layers, in ring order a → b → c.
  cluster = await startCluster(
    [
      { id: "a", memoryMb: 6000 },
      { id: "b", memoryMb: 3000 },
      { id: "c", memoryMb: 3000 },
    ],
    // No failover here: these tests check what a client sees when a stage dies and nothing recovers.
    ["--engine", "fake", "--fake-step-ms", "1", "--health-interval-ms", "500", "--max-failovers", "0"],
  );
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
});

async function answer(node: string, prompt: string, maxTokens = 24): Promise<string> {
  const stream = await cluster.client(node).chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: prompt }],
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

describe("a 3-node cluster on the fake engine", () => {
  test(
    "16 concurrent streaming requests through 3 nodes each get their own answer, then no node holds request state",
    withNodeLogs(async () => {
      const prompts = Array.from({ length: 16 }, (_, i) => `count from ${i} to ${i + 5} ${"!".repeat(i)}`);
      const expected: string[] = [];
      for (const p of prompts) expected.push(await answer("a", p));
      expect(new Set(expected).size).toBeGreaterThan(8);
      const got = await Promise.all(prompts.map((p, i) => answer(["a", "b", "c"][i % 3]!, p)));
      expect(got).toEqual(expected);
      await waitNoRequestState(cluster.nodes, 2000);
    }),
    60_000,
  );

  test(
    "a model larger than the cluster is refused with 503 model_too_big naming needed vs available memory, before any download",
    withNodeLogs(async () => {
      const err = await cluster
        .client("a")
        .chat.completions.create({ model: "llama-3.1-405b", messages: [{ role: "user", content: "hi" }] })
        .then(
          () => undefined,
          (e: unknown) => e as { status?: number; code?: string; message?: string },
        );
      expect(err?.status).toBe(503);
      expect(err?.code).toBe("model_too_big");
      expect(err?.message).toMatch(/needs .* GB .* the cluster has .* GB/);
      const progress = await (await fetch(`http://127.0.0.1:${cluster.node("a").apiPort}/v1/download/progress`)).json();
      expect(progress).toEqual({});
      expect(cluster.nodes.map((n) => n.logs()).join("\n")).not.toContain("llama-3.1-405b layers");
    }),
    30_000,
  );

  test(
    "a client that disconnects mid-stream frees the request on every stage within a second",
    withNodeLogs(async () => {
      const ac = new AbortController();
      const stream = await cluster
        .client("b")
        .chat.completions.create(
          { model: MODEL, messages: [{ role: "user", content: "go on forever" }], max_tokens: 100_000, stream: true },
          { signal: ac.signal },
        );
      let chunks = 0;
      try {
        for await (const chunk of stream)
          if ((chunk.choices[0]?.delta.content ?? "") !== "" && ++chunks === 5) ac.abort();
      } catch {
        // the aborted read rejects: that is the disconnect
      }
      expect(chunks).toBe(5);
      await waitNoRequestState(cluster.nodes, 1000);
    }),
    30_000,
  );

  test(
    "with --max-failovers 0, a stage killed mid-request gives the client an error within 10 s and the survivors hold no state of it",
    withNodeLogs(async () => {
      const stream = await cluster.client("a").chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "long answer" }],
        max_tokens: 100_000,
        stream: true,
      });
      let chunks = 0;
      let killedAt = 0;
      let error: unknown;
      const deadline = new Promise<"hung">((resolve) => setTimeout(() => resolve("hung"), 10_000).unref());
      const consume = (async () => {
        try {
          for await (const chunk of stream) {
            if ((chunk.choices[0]?.delta.content ?? "") !== "" && ++chunks === 5) {
              killedAt = Date.now();
              cluster.node("c").kill("SIGKILL");
            }
          }
        } catch (err) {
          error = err;
        }
        return "ended" as const;
      })();
      expect(await Promise.race([consume, deadline])).toBe("ended");
      expect(killedAt).toBeGreaterThan(0);
      expect(String((error as Error | undefined)?.message)).toMatch(/went down|link/);
      await waitNoRequestState([cluster.node("a"), cluster.node("b")], 2000);
    }),
    30_000,
  );
});
