// Download throughput of exo's downloader vs curl, same files, same local server, same run; and the time to
// verify (sha256) a 1 GiB file vs sha256sum. Prints a table and one JSON line.
// Run: nice -n 10 bun bench/download.ts [--gib 1] [--rounds 3]
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { downloadRepo } from "../src/download/download.ts";
import { createHasher } from "../src/download/hasher.ts";
import { startFakeHub } from "../test/helpers/fake-hub.ts";

const REPO = "bench-org/bench-model";
const { values } = parseArgs({
  options: {
    gib: { type: "string", default: "1" },
    rounds: { type: "string", default: "3" },
    files: { type: "string", default: "4" },
    serve: { type: "string" },
  },
});
// The server runs in its own process (as for curl, a real hub is elsewhere): `--serve <files...json>`.
if (values.serve) await serve(JSON.parse(values.serve) as string[]);
const totalBytes = Math.round(Number(values.gib) * 2 ** 30);
const rounds = Number(values.rounds);
const fileCount = Number(values.files);

const root = await mkdtemp(join(tmpdir(), "exo-bench-dl-"));
try {
  const files = await makeFiles(join(root, "src"), fileCount, Math.floor(totalBytes / fileCount));
  const hub = await spawnServer(files);
  const bytes = files.length * Bun.file(files[0] as string).size;
  const ours: number[] = [];
  const curl: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      // Alternate who goes first so page-cache and CPU warm-up favour neither.
      const runs = r % 2 === 0 ? [runOurs, runCurl] : [runCurl, runOurs];
      for (const run of runs) {
        const dir = join(root, `round-${r}-${run.name}`);
        // Start each run with no dirty pages from the previous one, so writeback throttling hits neither.
        await Bun.spawn(["sync"]).exited;
        const seconds = await run(dir, hub.url);
        (run === runOurs ? ours : curl).push(seconds);
        await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await hub.stop();
  }

  const verifyOurs: number[] = [];
  const verifyCli: number[] = [];
  const [big] = await makeFiles(join(root, "verify"), 1, 2 ** 30);
  if (!big) throw new Error("no verify file");
  for (let r = 0; r < rounds; r++) {
    verifyOurs.push(await timeIt(() => hashFile(big)));
    verifyCli.push(await timeIt(async () => void (await Bun.spawn(["sha256sum", big], { stdout: "ignore" }).exited)));
  }

  const mib = bytes / 2 ** 20;
  const rows = [
    ["exo downloader (writes + sha256 while streaming)", median(ours), mib / median(ours)],
    ["curl --parallel (writes only)", median(curl), mib / median(curl)],
    ["verify 1 GiB: Bun.CryptoHasher sha256 (streamed from disk)", median(verifyOurs), 1024 / median(verifyOurs)],
    ["verify 1 GiB: sha256sum", median(verifyCli), 1024 / median(verifyCli)],
  ] as const;
  console.log(`download bench: ${files.length} files, ${mib.toFixed(0)} MiB, ${rounds} rounds, medians`);
  console.log("| what | seconds | MiB/s |\n|---|---|---|");
  for (const [name, s, rate] of rows) console.log(`| ${name} | ${s.toFixed(3)} | ${rate.toFixed(0)} |`);
  const ratio = median(curl) / median(ours);
  console.log(
    `throughput ratio exo/curl: ${ratio.toFixed(3)} (goal >= 0.9); verify ratio sha256sum/exo: ${(median(verifyCli) / median(verifyOurs)).toFixed(3)}`,
  );
  console.log(
    JSON.stringify({
      bench: "download",
      bytes,
      files: files.length,
      rounds,
      exo_seconds: ours,
      curl_seconds: curl,
      exo_median_mib_s: mib / median(ours),
      curl_median_mib_s: mib / median(curl),
      ratio_exo_over_curl: ratio,
      verify_1gib_seconds_median: median(verifyOurs),
      sha256sum_1gib_seconds_median: median(verifyCli),
    }),
  );
} finally {
  await rm(root, { recursive: true, force: true });
}

async function serve(files: string[]): Promise<never> {
  const hub = await startFakeHub([
    {
      id: REPO,
      files: [
        {
          path: "config.json",
          bytes: new TextEncoder().encode(JSON.stringify({ model_type: "llama", num_hidden_layers: 1 })),
        },
        ...files.map((diskPath, k) => ({ path: `model-${k + 1}.safetensors`, diskPath })),
      ],
    },
  ]);
  process.stdout.write(`${JSON.stringify({ url: hub.url })}\n`);
  for await (const _ of process.stdin) {
    // Runs until the parent closes stdin.
  }
  await hub.stop();
  process.exit(0);
}

async function spawnServer(files: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--serve", JSON.stringify(files)], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("bench server exited before it was ready");
    text += new TextDecoder().decode(value);
  }
  const { url } = JSON.parse(text.trim()) as { url: string };
  return {
    url,
    // Closing stdin lets the server remove its temp repo; kill it only if it has not exited within 5 s.
    stop: async () => {
      proc.stdin.end();
      const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
      if (!exited) proc.kill();
    },
  };
}

async function runOurs(dir: string, endpoint: string): Promise<number> {
  return timeIt(async () => {
    await downloadRepo({ modelId: "bench", repo: REPO }, { hub: { endpoint }, hubCacheDir: dir, offline: false });
  });
}

async function runCurl(dir: string, endpoint: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const args = ["curl", "-sSfL", "--no-progress-meter", "--parallel", "--parallel-max", "8"];
  for (let k = 1; k <= fileCount; k++)
    args.push(`${endpoint}/${REPO}/resolve/main/model-${k}.safetensors`, "-o", join(dir, `model-${k}.safetensors`));
  return timeIt(async () => {
    const code = await Bun.spawn(args, { stdout: "ignore", stderr: "inherit" }).exited;
    if (code !== 0) throw new Error(`curl exited with ${code}`);
  });
}

async function hashFile(path: string): Promise<void> {
  const file = Bun.file(path);
  const h = createHasher("0".repeat(64), file.size);
  for await (const chunk of file.stream()) h.update(chunk);
  h.digest();
}

/** Files of pseudo-random bytes (a random 4 MiB block, varied per block so no two blocks are equal). */
async function makeFiles(dir: string, count: number, size: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const block = crypto.getRandomValues(new Uint8Array(4 << 20));
  const paths: string[] = [];
  for (let k = 0; k < count; k++) {
    const path = join(dir, `f${k}.bin`);
    const writer = Bun.file(path).writer();
    for (let off = 0, i = 0; off < size; off += block.length, i++) {
      block[0] = k;
      block[1] = i & 0xff;
      writer.write(block.subarray(0, Math.min(block.length, size - off)));
      await writer.flush();
    }
    await writer.end();
    paths.push(path);
  }
  return paths;
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
