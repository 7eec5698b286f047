// The KV layout of a decode batch, decided by this measurement (issue 14): B requests, each with its own KV cache
// and attention run per row (what src/models/cache-batch.ts does), vs the best case of one batched cache
// [B, kvHeads, T, hd] that every row shares (all rows the same length, so no padding and no mask; real requests
// of different lengths would also pay for padding to the longest and a mask). Same random f32 Llama stage as
// bench/batched-decode.ts; one decode step per sample, medians, side by side in one run, rounds alternating.
// Usage: nice -n 10 bun bench/batch-attention.ts [--batch 8] [--contexts 16,512] [--rounds 12]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { core as mx } from "@frost-beta/mlx";
import { writeRandomCheckpoint } from "../src/engine/random-checkpoint.ts";
import { createKVCache, type KVCache } from "../src/models/kv-cache.ts";
import { loadStage } from "../test/helpers/tiny-models.ts";
import { WIDE_LLAMA, WIDE_LLAMA_NAME } from "./wide-llama.ts";

const { values: opt } = parseArgs({
  options: {
    batch: { type: "string", default: "8" },
    contexts: { type: "string", default: "16,512" },
    rounds: { type: "string", default: "12" },
  },
});
const B = Number(opt.batch);
const CONTEXTS = opt.contexts.split(",").map(Number);
const ROUNDS = Number(opt.rounds);

const dir = mkdtempSync(join(tmpdir(), "exo-bench-attn-"));
await writeRandomCheckpoint(dir, { config: WIDE_LLAMA, seed: 3 });
const { model } = await loadStage(dir, 0, WIDE_LLAMA.num_hidden_layers);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const row = (r: number, len: number) => Array.from({ length: len }, (_, i) => 1 + ((r * 31 + i * 7) % 1000));
const tokens = (rows: number, len: number) =>
  mx.array(
    Array.from({ length: rows }, (_, r) => row(r, len)),
    mx.int32,
  );

/** Milliseconds of one evaluated decode step. */
function timed(step: () => mx.array): number {
  const t = performance.now();
  mx.eval(step());
  return performance.now() - t;
}

console.log(`${WIDE_LLAMA_NAME}; one decode step over ${B} requests; medians of ${ROUNDS}`);
console.log("| context | per-request caches ms | one batched cache ms | one request ms | per-request / batched |");
console.log("|---|---|---|---|---|");
for (const T of CONTEXTS) {
  const own: KVCache[] = Array.from({ length: B }, (_, r) => {
    const c = createKVCache(model.cacheSpec);
    mx.eval(model.forward(mx.array([row(r, T)], mx.int32), c));
    return c;
  });
  const shared = createKVCache(model.cacheSpec);
  mx.eval(model.forward(tokens(B, T), shared));
  const next = tokens(B, 1);
  const perRow: number[] = [];
  const batched: number[] = [];
  const single: number[] = [];
  timed(() => model.forwardBatch!(next, own)); // warm-up
  timed(() => model.forward(next, shared));
  for (let r = 0; r < ROUNDS; r++) {
    perRow.push(timed(() => model.forwardBatch!(next, own)));
    batched.push(timed(() => model.forward(next, shared)));
    single.push(timed(() => model.forward(next.index(mx.Slice(0, 1)), own[0]!)));
  }
  const [p, b, s] = [median(perRow), median(batched), median(single)];
  console.log(`| ${T} | ${p.toFixed(1)} | ${b.toFixed(1)} | ${s.toFixed(1)} | ${(p / b).toFixed(2)} |`);
  for (const c of [...own, shared]) c.free();
}
rmSync(dir, { recursive: true, force: true });
