// Why quantized checkpoints are dequantized to float32 at load on CPU: one 2048→8192 linear, side by side,
// f32 matmul vs quantizedMatmul (4/8-bit, float32 scales) vs our any-bit dequantize→matmul, at decode
// (1 row) and prefill (128 rows). Prints a table of medians and ratios, then one JSON line.
import { core as mx } from "@frost-beta/mlx";
import { dequantizeAffine, quantizeAffine } from "../src/engine/quantize.ts";

const OUT = 8192;
const IN = 2048;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => mx.array): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS + 2; i++) {
    const t0 = performance.now();
    mx.eval(fn());
    if (i >= 2) samples.push(performance.now() - t0);
    Bun.gc(true);
    await new Promise((r) => setImmediate(r));
  }
  return median(samples);
}

const w = mx.random.uniform(-0.03, 0.03, [OUT, IN], mx.float32, mx.random.key(1));
mx.eval(w);
const rows: Record<string, number | string>[] = [];
for (const L of [1, 128]) {
  const x = mx.random.uniform(-1, 1, [1, L, IN], mx.float32, mx.random.key(2));
  mx.eval(x);
  const f32 = await time(() => mx.matmul(x, w.T));
  rows.push({ rows: L, path: "f32 matmul", ms: f32, ratio: 1 });
  for (const bits of [4, 8]) {
    const [q, s, b] = mx.quantize(w, 64, bits) as unknown as [mx.array, mx.array, mx.array];
    mx.eval(q, s, b);
    const qmm = await time(() => mx.quantizedMatmul(x, q, s, b, true, 64, bits));
    rows.push({ rows: L, path: `q${bits} quantizedMatmul`, ms: qmm, ratio: qmm / f32 });
    const [q2, s2, b2] = quantizeAffine(w, 64, bits);
    mx.eval(q2, s2, b2);
    const deq = await time(() => mx.matmul(x, dequantizeAffine(q2, s2, b2, 64, bits).T));
    rows.push({ rows: L, path: `q${bits} dequantize per call`, ms: deq, ratio: deq / f32 });
  }
}
const t0 = performance.now();
const [q3, s3, b3] = quantizeAffine(w, 64, 4);
mx.eval(q3, s3, b3);
const t1 = performance.now();
mx.eval(dequantizeAffine(q3, s3, b3, 64, 4));
const loadMs = performance.now() - t1;

console.log(`linear ${IN}->${OUT}, median of ${RUNS} runs`);
console.log("rows | path                      | ms      | x f32");
for (const r of rows)
  console.log(
    `${String(r.rows).padStart(4)} | ${String(r.path).padEnd(25)} | ${Number(r.ms).toFixed(2).padStart(7)} | ${Number(r.ratio).toFixed(2)}`,
  );
console.log(
  `one-time dequantize of the q4 matrix at load: ${loadMs.toFixed(1)} ms (quantize took ${(t1 - t0).toFixed(1)} ms)`,
);
console.log(JSON.stringify({ bench: "quantized-linear", rows, dequantizeAtLoadMs: loadMs }));
