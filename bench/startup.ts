// Startup of the compiled executable beside the same code run from sources: size, spawn → `ready` line
// (no model, median of N), and spawn → first answer of the embedded model (cold = fresh EXO_HOME, warm = reused).
// Usage: bun bench/startup.ts [runs=10] [binary=dist/exo]   (builds the binary first when it is missing)
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildExecutable } from "../build.ts";

const ROOT = resolve(import.meta.dir, "..");
const runs = Number(process.argv[2] ?? 10);
const binary = resolve(process.argv[3] ?? join(ROOT, "dist/exo"));
if (!existsSync(binary)) await buildExecutable({ target: "host", outfile: binary });

type Variant = { name: string; cmd: string[] };
const variants: Variant[] = [
  { name: "binary", cmd: [binary] },
  { name: "sources", cmd: [process.execPath, join(ROOT, "src/main.ts")] },
];

interface Started {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  readyMs: number;
  apiPort: number;
}

/** Spawns `start` and resolves at its ready line. */
async function start(v: Variant, home: string): Promise<Started> {
  const t0 = performance.now();
  const proc = Bun.spawn([...v.cmd, "start", "--node-id", "bench", "--port", "0", "--api-port", "0"], {
    cwd: tmpdir(),
    env: { ...process.env, EXO_HOME: home, EXO_LOG_LEVEL: "1" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of proc.stdout) {
    text += decoder.decode(chunk, { stream: true });
    const line = text.split("\n").find((l) => l.includes('"event":"ready"'));
    if (line) return { proc, readyMs: performance.now() - t0, apiPort: JSON.parse(line).api_port };
  }
  throw new Error(`${v.name}: exited before its ready line: ${await new Response(proc.stderr).text()}`);
}

async function stop(s: Started): Promise<void> {
  s.proc.kill("SIGTERM");
  await s.proc.exited;
}

/** Spawn → ready → first chat answer from the embedded model. */
async function firstAnswer(v: Variant, home: string): Promise<{ readyMs: number; answerMs: number }> {
  const t0 = performance.now();
  const s = await start(v, home);
  try {
    const res = await fetch(`http://127.0.0.1:${s.apiPort}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "exo-tiny-chat",
        messages: [{ role: "user", content: "count from 3 to 9" }],
        max_tokens: 16,
        temperature: 0,
      }),
    });
    if (!res.ok) throw new Error(`${v.name}: ${res.status} ${await res.text()}`);
    await res.json();
    return { readyMs: s.readyMs, answerMs: performance.now() - t0 };
  } finally {
    await stop(s);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const home = () => mkdtempSync(join(tmpdir(), "exo-bench-startup-"));
const results: Record<string, Record<string, number>> = {};

for (const v of variants) {
  const ready: number[] = [];
  const h = home();
  for (let i = 0; i < runs; i++) await stop(await start(v, h).then((s) => (ready.push(s.readyMs), s)));
  const coldHome = home();
  const cold = await firstAnswer(v, coldHome);
  const warm = await firstAnswer(v, h);
  for (const dir of [h, coldHome]) rmSync(dir, { recursive: true, force: true });
  results[v.name] = {
    readyMedianMs: median(ready),
    readyMinMs: Math.min(...ready),
    coldAnswerMs: cold.answerMs,
    warmAnswerMs: warm.answerMs,
  };
}

const b = results.binary!;
const s = results.sources!;
const row = (label: string, key: string) =>
  console.log(
    `${label.padEnd(34)} ${b[key]!.toFixed(0).padStart(8)} ${s[key]!.toFixed(0).padStart(8)} ${(b[key]! / s[key]!).toFixed(2).padStart(7)}`,
  );
console.log(`binary ${binary}: ${(statSync(binary).size / 2 ** 20).toFixed(1)} MiB`);
console.log(`${"ms".padEnd(34)} ${"binary".padStart(8)} ${"sources".padStart(8)} ${"ratio".padStart(7)}`);
row(`start → ready, median of ${runs}`, "readyMedianMs");
row("start → ready, fastest", "readyMinMs");
row("start → first answer, fresh home", "coldAnswerMs");
row("start → first answer, warm home", "warmAnswerMs");
console.log(
  JSON.stringify({
    bench: "startup",
    runs,
    sizeBytes: statSync(binary).size,
    ...Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v])),
  }),
);
process.exit(0);
