// The test command (README, .ci/run): unit, models, then integration suites, each its own `bun test`
// process, then one summary line `N passed, N failed`. Exits non-zero on any failure.
import { existsSync } from "node:fs";

const suites: Array<{ dir: string; timeoutMs: number }> = [
  { dir: "test/unit", timeoutMs: 20_000 },
  { dir: "test/models", timeoutMs: 180_000 },
  { dir: "test/integration", timeoutMs: 180_000 },
];

let passed = 0;
let failed = 0;
let crashed = false;
for (const { dir, timeoutMs } of suites) {
  if (!(await dirHasTests(dir))) continue;
  const proc = Bun.spawn([process.execPath, "test", `./${dir}`, "--timeout", String(timeoutMs)], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  // bun test writes results to stderr; mirror both streams and keep a copy to count.
  const [out, err] = await Promise.all([mirror(proc.stdout, process.stdout), mirror(proc.stderr, process.stderr)]);
  const code = await proc.exited;
  const text = out + err;
  const pass = Number(/^\s*(\d+) pass$/m.exec(text)?.[1] ?? 0);
  const fail = Number(/^\s*(\d+) fail$/m.exec(text)?.[1] ?? 0);
  passed += pass;
  failed += fail;
  if (code !== 0 && fail === 0) crashed = true;
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || crashed || passed === 0 ? 1 : 0);

async function mirror(stream: ReadableStream<Uint8Array>, sink: NodeJS.WriteStream): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    sink.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  return text;
}

async function dirHasTests(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return false;
  const glob = new Bun.Glob("**/*.test.ts");
  for await (const _ of glob.scan({ cwd: dir, onlyFiles: true })) return true;
  return false;
}
