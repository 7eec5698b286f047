// The test command (README, .ci/run): unit, models, integration and the hub journey, each its own `bun test`
// process, then the journey again against the compiled executable (built first, run through NODE_BIN), then
// one summary line `N passed, N failed` counting every suite. Exits non-zero on any failure.
import { existsSync } from "node:fs";
import { resolve } from "node:path";

interface Suite {
  dir: string;
  timeoutMs: number;
  /** Run the nodes from the compiled executable (`bun run build`, then NODE_BIN=dist/exo). */
  compiled?: boolean;
}

const suites: Suite[] = [
  { dir: "test/unit", timeoutMs: 20_000 },
  { dir: "test/models", timeoutMs: 180_000 },
  { dir: "test/integration", timeoutMs: 180_000 },
  { dir: "test/journey", timeoutMs: 180_000 },
  { dir: "test/journey", timeoutMs: 180_000, compiled: true },
];
const COMPILED = resolve(import.meta.dir, "../dist/exo");

let passed = 0;
let failed = 0;
let crashed = false;
let built = false;
for (const { dir, timeoutMs, compiled } of suites) {
  if (!(await dirHasTests(dir))) continue;
  if (compiled && !built) {
    console.log("building the executable for the compiled-binary suite (bun run build)");
    const build = Bun.spawn([process.execPath, "build.ts"], {
      cwd: resolve(import.meta.dir, ".."),
      stdout: "inherit",
      stderr: "inherit",
    });
    if ((await build.exited) !== 0) {
      console.error("bun run build failed: the compiled-binary suite did not run");
      crashed = true;
      continue;
    }
    built = true;
  }
  if (compiled) console.log(`${dir} against the compiled executable (NODE_BIN=${COMPILED})`);
  const proc = Bun.spawn([process.execPath, "test", `./${dir}`, "--timeout", String(timeoutMs)], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, FORCE_COLOR: "0", ...(compiled ? { NODE_BIN: COMPILED } : {}) },
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
