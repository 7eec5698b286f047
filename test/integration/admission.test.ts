// Admission (issue 14 part 4) on real node processes: a burst beyond the live limit waits in FIFO order instead
// of failing, only a request beyond --queue-size gets 429 with Retry-After, a queued request whose client goes away
// leaves the queue at once, and the queue depth and batch sizes show in GET /debug/state and in peers' STATUS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { startCluster, waitNoRequestState, type TestCluster } from "../helpers/cluster-nodes.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const MODEL = "exo-tiny-chat";

interface DebugState {
  live_requests: { queued: number; coordinating: number; stages: number; engine: number };
  admission: {
    running: number;
    queued: number;
    peak_queued: number;
    limit: number;
    queue_size: number;
    refused: number;
  };
  batch: { last: number; peak: number } | null;
  peers_load: Record<string, { queued: number; running: number; age_ms: number }>;
}

async function debugState(node: SpawnedNode): Promise<DebugState> {
  return (await (await fetch(`http://127.0.0.1:${node.apiPort}/debug/state`)).json()) as DebugState;
}

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: MODEL, messages: [{ role: "user", content }], temperature: 0, ...extra });

/** A plain chat completion by fetch (the test reads status and headers); `signal` is the client's disconnect. */
function post(node: SpawnedNode, body: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`http://127.0.0.1:${node.apiPort}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    ...(signal ? { signal } : {}),
  });
}

describe("one node on the embedded model (default --max-live 32, --queue-size 256)", () => {
  let node: SpawnedNode;
  let client: OpenAI;
  beforeAll(async () => {
    node = await spawnNode({
      args: [
        ...["--node-id", "solo", "--host", "127.0.0.1", "--port", "0"],
        ...["--api-host", "127.0.0.1", "--api-port", "0", "--memory-mb", "4000"],
      ],
    });
    client = new OpenAI({ baseURL: `http://127.0.0.1:${node.apiPort}/v1`, apiKey: "unused", maxRetries: 0 });
  }, 30_000);

  const ask = async (content: string) =>
    (await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content }], temperature: 0 }))
      .choices[0]!.message.content;

  test(
    "64 concurrent requests are all answered, each as it is alone, and /debug/state shows the queue and batches meanwhile",
    withNodeLogs(async () => {
      const prompts = Array.from({ length: 8 }, (_, i) => `count from ${i + 1} to ${i + 7}`);
      const alone = new Map<string, string | null>();
      for (const p of prompts) alone.set(p, await ask(p));
      expect(alone.get("count from 3 to 9")).toBe("3 4 5 6 7 8 9");

      const burst = Array.from({ length: 64 }, (_, i) => prompts[i % prompts.length]!);
      let done = false;
      const seen = { queued: 0, running: 0, batch: 0 };
      const watch = (async () => {
        while (!done) {
          const s = await debugState(node);
          seen.queued = Math.max(seen.queued, s.admission.queued);
          seen.running = Math.max(seen.running, s.admission.running);
          seen.batch = Math.max(seen.batch, s.batch?.last ?? 0);
        }
      })();
      const answers = await Promise.all(burst.map(ask)).finally(() => {
        done = true;
      });
      await watch;
      expect(answers).toEqual(burst.map((p) => alone.get(p)!));

      // Seen while the burst ran: requests beyond the live limit waited, and decode steps shared forwards.
      expect(seen.queued).toBeGreaterThan(0);
      expect(seen.running).toBe(32);
      expect(seen.batch).toBeGreaterThan(1);
      const after = await debugState(node);
      expect(after.admission).toMatchObject({ running: 0, queued: 0, limit: 32, queue_size: 256, refused: 0 });
      expect(after.admission.peak_queued).toBeGreaterThan(0);
      expect(after.batch!.peak).toBeGreaterThan(1);
      await waitNoRequestState([node]);
    }),
    240_000,
  );
});

describe("two nodes on the fake engine with --max-live 2 --queue-size 2", () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await startCluster(
      [
        { id: "a", memoryMb: 3000 },
        { id: "b", memoryMb: 3000 },
      ],
      ["--engine", "fake", "--fake-step-ms", "20", "--max-live", "2", "--queue-size", "2"],
    );
    // Prepared once, so the requests below wait only for each other.
    expect((await post(cluster.node("a"), chatBody("warm up", { max_tokens: 2 }))).status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  test(
    "the request beyond the queue gets 429 rate_limit_error with Retry-After; the queued ones are answered",
    withNodeLogs(async () => {
      const a = cluster.node("a");
      const accepted = Array.from({ length: 4 }, (_, i) => post(a, chatBody(`request ${i}`, { max_tokens: 60 })));
      await waitFor(
        async () => {
          const { admission } = await debugState(a);
          return admission.running === 2 && admission.queued === 2;
        },
        { what: "2 running and 2 queued on a" },
      );
      const refused = await post(a, chatBody("one too many", { max_tokens: 60 }));
      expect(refused.status).toBe(429);
      expect(refused.headers.get("retry-after")).toBe("1");
      const { error } = (await refused.json()) as { error: { type: string; code: string; message: string } };
      expect(error).toMatchObject({ type: "rate_limit_error", code: "capacity_exceeded" });
      expect(error.message).toContain("--queue-size 2");

      const answers = await Promise.all(accepted);
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      for (const r of answers) {
        const json = (await r.json()) as OpenAI.ChatCompletion;
        expect(json.usage!.completion_tokens).toBe(60);
      }
      const after = await debugState(a);
      expect(after.admission).toMatchObject({ running: 0, queued: 0, limit: 2, queue_size: 2 });
      expect(after.admission.refused).toBeGreaterThanOrEqual(1);
      await waitNoRequestState(cluster.nodes);
    }),
    60_000,
  );

  test(
    "a queued request whose client disconnects leaves the queue at once; the next queued one gets the slot",
    withNodeLogs(async () => {
      const a = cluster.node("a");
      const running = [new AbortController(), new AbortController()];
      // Their clients go away below: the rejections are expected.
      const long = running.map((c, i) =>
        post(a, chatBody(`long ${i}`, { max_tokens: 100_000 }), c.signal).catch((e: Error) => e.name),
      );
      await waitFor(async () => (await debugState(a)).admission.running === 2, { what: "2 running on a" });
      const gone = new AbortController();
      const cancelled = post(a, chatBody("cancelled while queued", { max_tokens: 5 }), gone.signal);
      const next = post(a, chatBody("queued after it", { max_tokens: 5 }));
      await waitFor(async () => (await debugState(a)).admission.queued === 2, { what: "2 queued on a" });

      gone.abort();
      expect(
        await cancelled.then(
          () => "answered",
          (e: Error) => e.name,
        ),
      ).toBe("AbortError");
      // Left the queue with its client: long before any running request frees a slot.
      await waitFor(async () => (await debugState(a)).live_requests.queued === 1, {
        what: "the cancelled request out of the queue",
        timeoutMs: 2000,
      });
      const mid = await debugState(a);
      expect(mid.admission).toMatchObject({ running: 2, queued: 1 });
      expect(mid.live_requests.coordinating).toBe(2);

      // A running request ends (its client goes away): the remaining queued request takes the slot and finishes.
      running[0]!.abort();
      const answered = await next;
      expect(answered.status).toBe(200);
      expect(((await answered.json()) as OpenAI.ChatCompletion).usage!.completion_tokens).toBe(5);
      running[1]!.abort();
      expect(await Promise.all(long)).toEqual(["AbortError", "AbortError"]);
      await waitNoRequestState(cluster.nodes);
      expect((await debugState(a)).admission).toMatchObject({ running: 0, queued: 0 });
    }),
    60_000,
  );

  test(
    "a streamed request still queued after its 200 headers leaves the queue when its client cancels the stream",
    withNodeLogs(async () => {
      const a = cluster.node("a");
      const running = [new AbortController(), new AbortController()];
      const long = running.map((c, i) =>
        post(a, chatBody(`busy ${i}`, { max_tokens: 100_000 }), c.signal).catch((e: Error) => e.name),
      );
      await waitFor(async () => (await debugState(a)).admission.running === 2, { what: "2 running on a" });
      // Past the API's header wait the 200 goes out (with the first keep-alive comment) while it is still queued.
      const res = await post(a, chatBody("streamed, queued", { max_tokens: 5, stream: true }));
      expect(res.status).toBe(200);
      expect((await debugState(a)).admission.queued).toBe(1);
      await res.body!.cancel();
      await waitFor(async () => (await debugState(a)).live_requests.queued === 0, {
        what: "the cancelled stream out of the queue",
        timeoutMs: 2000,
      });
      expect((await debugState(a)).admission.running).toBe(2);
      for (const c of running) c.abort();
      expect(await Promise.all(long)).toEqual(["AbortError", "AbortError"]);
      await waitNoRequestState(cluster.nodes);
    }),
    60_000,
  );

  test(
    "the coordinator's queue depth reaches its peers in STATUS (GET /debug/state peers_load)",
    withNodeLogs(async () => {
      const [a, b] = [cluster.node("a"), cluster.node("b")];
      const stop = new AbortController();
      const load = Array.from({ length: 4 }, (_, i) =>
        post(a, chatBody(`load ${i}`, { max_tokens: 100_000 }), stop.signal).catch(() => undefined),
      );
      await waitFor(
        async () => {
          const seen = (await debugState(b)).peers_load.a;
          return seen?.running === 2 && seen.queued === 2;
        },
        { what: "b to hear a's 2 running and 2 queued" },
      );
      stop.abort();
      await Promise.all(load);
      await waitFor(
        async () => {
          const seen = (await debugState(b)).peers_load.a;
          return seen?.running === 0 && seen.queued === 0;
        },
        { what: "b to hear a's queue empty again" },
      );
      await waitNoRequestState(cluster.nodes);
    }),
    60_000,
  );
});

describe("KV-aware admission: one node on the fake engine with --kv-cache-mb 1 and --max-live 8", () => {
  let node: SpawnedNode;
  beforeAll(async () => {
    node = await spawnNode({
      args: [
        ...["--node-id", "kv", "--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"],
        ...["--memory-mb", "4000", "--engine", "fake", "--fake-step-ms", "5"],
        ...["--max-live", "8", "--queue-size", "8", "--kv-cache-mb", "1"],
      ],
    });
    expect((await post(node, chatBody("warm up", { max_tokens: 2 }))).status).toBe(200);
  }, 30_000);

  test(
    "long contexts beyond the KV budget queue (FIFO, a short one behind them too) instead of running, then all finish",
    withNodeLogs(async () => {
      // The embedded model keeps 1 KiB a token: each long request reserves (prompt + 480) KiB, two fit in 1 MiB.
      const long = [0, 1, 2].map((i) => post(node, chatBody(`long ${i}`, { max_tokens: 480 })));
      await waitFor(async () => (await debugState(node)).admission.queued === 1, { what: "the third long one queued" });
      const short = post(node, chatBody("short", { max_tokens: 5 }));
      await waitFor(async () => (await debugState(node)).admission.queued === 2, { what: "the short one queued" });
      const mid = (await debugState(node)).admission as DebugState["admission"] & Record<string, number>;
      expect(mid).toMatchObject({ running: 2, queued: 2, limit: 8, kv_budget_bytes: 1024 * 1024 });
      expect(mid.kv_reserved_bytes).toBeGreaterThan(2 * 480 * 1024);
      expect(mid.kv_reserved_bytes).toBeLessThanOrEqual(1024 * 1024);

      const answers = await Promise.all([...long, short]);
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      const tokens = await Promise.all(
        answers.map(async (r) => ((await r.json()) as OpenAI.ChatCompletion).usage!.completion_tokens),
      );
      expect(tokens).toEqual([480, 480, 480, 5]);
      expect((await debugState(node)).admission).toMatchObject({ running: 0, queued: 0, kv_reserved_bytes: 0 });
      await waitNoRequestState([node]);
    }),
    60_000,
  );
});
