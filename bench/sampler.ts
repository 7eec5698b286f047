// Cost of one sampling call on a 128k vocabulary, per mode, side by side: greedy argmax, top_k, top_p over
// the candidate set, and plain temperature over the whole vocabulary (probabilities pulled into JS).
// Prints medians and ratios to greedy, then one JSON line.
import { core as mx } from "@frost-beta/mlx";
import { makeSampler } from "../src/engine/sampler.ts";
import type { SamplingParams } from "../src/engine/types.ts";

const V = 128256;
const RUNS = Number(process.env.BENCH_RUNS ?? 30);
// Two shapes of distribution: broad (std 3: top_p needs more than 1024 candidates) and peaked (std 8, LLM-like).
const noise = mx.random.normal([1, V], mx.float32, 0, 1, mx.random.key(0));
const dists = { broad: mx.multiply(noise, 3), peaked: mx.multiply(noise, 8) };
mx.eval(dists.broad, dists.peaked);

const modes: Record<string, SamplingParams> = {
  greedy: { temperature: 0, topP: 1, topK: 0 },
  "top_k 40": { temperature: 0.8, topP: 1, topK: 40, seed: 1 },
  "top_p 0.9": { temperature: 0.8, topP: 0.9, topK: 0, seed: 1 },
  "top_k 40 + top_p 0.9": { temperature: 0.8, topP: 0.9, topK: 40, seed: 1 },
  "temperature only (full vocab)": { temperature: 0.8, topP: 1, topK: 0, seed: 1 },
};

const results: { mode: string; medianMs: number; ratio: number }[] = [];
for (const [dist, logits] of Object.entries(dists))
  for (const [name, params] of Object.entries(modes)) {
    const mode = `${dist}: ${name}`;
    const sample = makeSampler(params);
    const times: number[] = [];
    for (let i = 0; i < RUNS + 3; i++) {
      const t0 = performance.now();
      sample(logits);
      if (i >= 3) times.push(performance.now() - t0);
      if (i % 4 === 0) {
        Bun.gc(true);
        await new Promise((r) => setImmediate(r));
      }
    }
    times.sort((a, b) => a - b);
    results.push({ mode, medianMs: times[Math.floor(times.length / 2)]!, ratio: 0 });
  }
for (const r of results) r.ratio = r.medianMs / results[0]!.medianMs;
console.log(`sampling one token from ${V} logits, median of ${RUNS}`);
for (const r of results)
  console.log(`${r.mode.padEnd(40)} ${r.medianMs.toFixed(2).padStart(7)} ms  x${r.ratio.toFixed(1)}`);
console.log(JSON.stringify({ bench: "sampler", vocab: V, results }));
