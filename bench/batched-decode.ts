// Aggregate decode tokens/s of N concurrent greedy streams on one stage: the batching engine (decode steps of live
// requests share one forward) vs the same engine with maxBatch 1 (each request stepped alone, the path before
// batching), side by side in one run, rounds alternating. Medians; ratios batched/alone and vs one stream.
// Usage: nice -n 10 bun bench/batched-decode.ts [--streams 1,2,4,8,16] [--decode 48] [--rounds 3]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLocalEngine, type LocalEngine } from "../src/engine/local-engine.ts";
import { writeRandomCheckpoint } from "../src/engine/random-checkpoint.ts";
import type { SamplingParams, StageInput } from "../src/engine/types.ts";
import { allDecodingRate } from "./decode-span.ts";
import { WIDE_LLAMA, WIDE_LLAMA_NAME } from "./wide-llama.ts";

const { values: opt } = parseArgs({
  options: {
    streams: { type: "string", default: "1,2,4,8,16" },
    decode: { type: "string", default: "48" },
    rounds: { type: "string", default: "3" },
  },
});
const STREAMS = opt.streams.split(",").map(Number);
const DECODE = Number(opt.decode);
const ROUNDS = Number(opt.rounds);
const GREEDY: SamplingParams = { temperature: 0, topP: 1, topK: 0 };

const dir = mkdtempSync(join(tmpdir(), "exo-bench-batch-"));
await writeRandomCheckpoint(dir, { config: WIDE_LLAMA, seed: 3 });
const shard = { modelId: "bench", modelDir: dir, layerStart: 0, layerEnd: 8, nLayers: 8 };

/** One stream: a short prompt, then DECODE tokens; returns when each token arrived (the first is the prefill's). */
async function stream(engine: LocalEngine, id: string, seed: number): Promise<number[]> {
  let input: StageInput = { kind: "tokens", tokens: [1 + (seed % 50), 7, 9, 11] };
  const arrivals: number[] = [];
  try {
    for (let i = 0; i <= DECODE; i++) {
      const y = await engine.step(id, input, GREEDY, { stages: 1 });
      if (y.kind !== "token") throw new Error("expected a token from the last stage");
      arrivals.push(performance.now());
      input = { kind: "tokens", tokens: [y.token] };
    }
    return arrivals;
  } finally {
    await engine.end(id);
  }
}

/** Aggregate decode tokens/s of n concurrent streams (decode-span.ts says over which span). */
async function aggregate(engine: LocalEngine, n: number, round: number): Promise<number> {
  const streams = await Promise.all(Array.from({ length: n }, (_, i) => stream(engine, `r${round}-${i}`, i)));
  return allDecodingRate(streams.map((arrivals) => ({ arrivals, tokensPerArrival: 1 })));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const batched = createLocalEngine({ maxBatch: 32 });
const alone = createLocalEngine({ maxBatch: 1 });
await batched.load(shard);
await alone.load(shard);
await aggregate(batched, 2, -1); // warm-up
await aggregate(alone, 2, -2);

const rows: { n: number; batched: number; alone: number }[] = [];
for (const n of STREAMS) {
  const b: number[] = [];
  const a: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    b.push(await aggregate(batched, n, r));
    a.push(await aggregate(alone, n, r));
  }
  rows.push({ n, batched: median(b), alone: median(a) });
}
await batched.close();
await alone.close();
rmSync(dir, { recursive: true, force: true });

const one = rows.find((r) => r.n === 1);
console.log(`${WIDE_LLAMA_NAME}; ${DECODE} decode tokens per stream, medians of ${ROUNDS}`);
console.log("| streams | batched tok/s | maxBatch 1 tok/s | batched / maxBatch 1 | batched vs 1 stream |");
console.log("|---|---|---|---|---|");
for (const r of rows) {
  const vsOne = one ? `${(r.batched / one.batched).toFixed(2)}x` : "n/a";
  console.log(
    `| ${r.n} | ${r.batched.toFixed(1)} | ${r.alone.toFixed(1)} | ${(r.batched / r.alone).toFixed(2)} | ${vsOne} |`,
  );
}
