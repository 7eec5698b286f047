// Why the engine runs in a child: the node's health-check latency while a model generates, with the MLX
// engine in-process against the same engine behind createRunnerEngine, side by side in one run.
// A probe process polls GET /healthcheck on the node's HTTP server every 5 ms; we report p50/p99/max and tok/s.
// Usage: nice -n 10 bun bench/runner-responsiveness.ts [decodeTokens=24] [promptTokens=128]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalEngine } from "../src/engine/local-engine.ts";
import { writeRandomCheckpoint } from "../src/engine/random-checkpoint.ts";
import { createRunnerEngine } from "../src/engine/runner-client.ts";
import type { SamplingParams, ShardEngine, ShardSpec } from "../src/engine/types.ts";

const CONFIG = {
  model_type: "llama",
  hidden_size: 1024,
  num_hidden_layers: 8,
  num_attention_heads: 16,
  num_key_value_heads: 4,
  intermediate_size: 2816,
  vocab_size: 32000,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  tie_word_embeddings: false,
};
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

if (process.argv[2] === "--probe") await probe(process.argv[3]!);
else await main(Number(process.argv[2] ?? 24), Number(process.argv[3] ?? 128));

/** Polls `url` until stdin closes, then prints every latency (ms) as one JSON array. */
async function probe(url: string): Promise<void> {
  const latencies: number[] = [];
  let running = true;
  void (async () => {
    for await (const _ of Bun.stdin.stream());
    running = false;
  })();
  while (running) {
    const t0 = performance.now();
    await (await fetch(url)).text();
    latencies.push(performance.now() - t0);
    await Bun.sleep(5);
  }
  console.log(JSON.stringify(latencies));
}

async function main(decodeTokens: number, promptTokens: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "exo-bench-resp-"));
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ status: "ok" }) });
  try {
    await writeRandomCheckpoint(dir, { config: CONFIG, seed: 1 });
    const shard: ShardSpec = { modelId: "bench", modelDir: dir, layerStart: 0, layerEnd: 8, nLayers: 8 };
    const prompt = Array.from({ length: promptTokens }, (_, i) => (i * 7919) % 32000);
    const rows = [];
    for (const [name, make] of [
      ["in-process", () => createLocalEngine()],
      ["runner", () => createRunnerEngine({ engine: "mlx" })],
    ] as const) {
      const engine: ShardEngine = make();
      await engine.load(shard);
      await generate(engine, "warm", prompt.slice(0, 8), 2);
      const prober = Bun.spawn(
        [process.execPath, import.meta.path, "--probe", `http://127.0.0.1:${server.port}/healthcheck`],
        {
          stdin: "pipe",
          stdout: "pipe",
        },
      );
      const t0 = performance.now();
      const tokens = await generate(engine, "bench", prompt, decodeTokens + 1);
      const seconds = (performance.now() - t0) / 1000;
      prober.stdin.end();
      const latencies = (JSON.parse(await new Response(prober.stdout).text()) as number[]).sort((a, b) => a - b);
      await engine.close();
      const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
      rows.push({
        name,
        probes: latencies.length,
        p50: q(0.5),
        p99: q(0.99),
        max: latencies[latencies.length - 1]!,
        tokPerS: tokens.length / seconds,
        tokens,
      });
    }
    const same = JSON.stringify(rows[0]!.tokens) === JSON.stringify(rows[1]!.tokens);
    console.log("engine        probes   p50 ms   p99 ms    max ms   tok/s (prefill+decode)");
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(12)} ${String(r.probes).padStart(7)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${r.max.toFixed(1).padStart(9)} ${r.tokPerS.toFixed(2).padStart(8)}`,
      );
    }
    const [a, b] = rows;
    console.log(
      `p99 in-process/runner: ${(a!.p99 / b!.p99).toFixed(1)}x; runner tok/s / in-process tok/s: ${(b!.tokPerS / a!.tokPerS).toFixed(3)}; same tokens: ${same}`,
    );
    console.log(
      JSON.stringify({
        bench: "runner-responsiveness",
        promptTokens,
        decodeTokens,
        rows: rows.map(({ tokens, ...r }) => r),
        sameTokens: same,
      }),
    );
  } finally {
    server.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function generate(engine: ShardEngine, id: string, prompt: number[], count: number): Promise<number[]> {
  const out: number[] = [];
  let input = prompt;
  for (let i = 0; i < count; i++) {
    const step = await engine.step(id, { kind: "tokens", tokens: input }, GREEDY);
    if (step.kind !== "token") throw new Error("a whole-model stage must answer tokens");
    out.push(step.token);
    input = [step.token];
  }
  await engine.end(id);
  return out;
}
