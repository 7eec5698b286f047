// A new user's first answer, timed: a cold `exo run REPO --prompt` (empty HF_HOME, weights from the local fake hub)
// to its first token on 1 and 2 nodes, split into startup, download, load and first token (tokenize + prefill), side
// by side with `exo pull` then a warm `exo run` in the same session (same hub, same checkpoint). Phases come from
// `exo run`'s own progress lines on stderr (a node's first "downloading", "loading", "ready") and the first byte
// of its answer on stdout. Median of N runs per row; ratios cold / warm; a table and a JSON line.
// Usage: bun bench/cold-run.ts [runs=3] [binary]   (no binary: the sources)
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startFakeHub } from "../test/helpers/fake-hub.ts";
import { journeyRepo, makeJourneyCheckpoint } from "../test/helpers/journey-model.ts";

const ROOT = resolve(import.meta.dir, "..");
const runs = Number(process.argv[2] ?? 3);
const exo = process.argv[3] ? [resolve(process.argv[3])] : [process.execPath, join(ROOT, "src/main.ts")];
const REPO = "bench/cold-llama-8";
// ~110 MB of float32 weights in 4 files of 2 layers each: big enough that download and load show.
const DIMS = { hidden: 512, layers: 8, heads: 8, kvHeads: 4, intermediate: 1536 };
const FILE_LAYERS: Array<[number, number]> = [
  [0, 2],
  [2, 4],
  [4, 6],
  [6, 8],
];
const LOCAL = ["--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"];

const work = mkdtempSync(join(tmpdir(), "exo-bench-cold-"));
await makeJourneyCheckpoint(join(work, "unsplit"), DIMS);
const hub = await startFakeHub([journeyRepo(REPO, join(work, "unsplit"), FILE_LAYERS)]);

/** Milliseconds from spawn of `exo run` to each mark; `pullMs` when the row pulled first (not in the run's total). */
interface Phases {
  startup: number;
  download: number;
  load: number;
  firstToken: number;
  total: number;
  pullMs?: number;
}

let homes = 0;
function freshHome(): Record<string, string> {
  const dir = join(work, `home-${homes++}`);
  return {
    HF_ENDPOINT: hub.url,
    HF_HOME: join(dir, "hf"),
    HF_HUB_CACHE: "",
    HF_TOKEN: "",
    HF_HUB_OFFLINE: "",
    EXO_HOME: join(dir, "exo"),
    NO_COLOR: "1",
    EXO_LOG_LEVEL: "1",
  };
}

async function run(cmd: string[], env: Record<string, string>): Promise<number> {
  const proc = Bun.spawn([...exo, ...cmd], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`exo ${cmd.join(" ")} exited ${code}: ${err}`);
  return code;
}

/** `exo start` a peer and resolve at its ready line (port in the line). */
async function startPeer(env: Record<string, string>) {
  const proc = Bun.spawn([...exo, "start", "--node-id", "b", ...LOCAL, "--memory-mb", "8000"], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "ignore",
  });
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of proc.stdout) {
    text += decoder.decode(chunk, { stream: true });
    const line = text.split("\n").find((l) => l.includes('"event":"ready"'));
    if (line) return { proc, port: (JSON.parse(line) as { port: number }).port };
  }
  throw new Error("peer b exited before its ready line");
}

/** One `exo run --prompt`, timed from its own progress lines. */
async function timedRun(env: Record<string, string>, nodes: string[], extra: string[]): Promise<Phases> {
  const t0 = performance.now();
  const args = ["run", REPO, "--prompt", "count from 3 to 9", "--max-tokens", "4", "--node-id", "a", ...LOCAL];
  const proc = Bun.spawn([...exo, ...args, "--memory-mb", "8000", ...extra], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const firstSeen = new Map<string, number>();
  const mark = (key: string) => firstSeen.has(key) || firstSeen.set(key, performance.now() - t0);
  const readErr = (async () => {
    const decoder = new TextDecoder();
    let text = "";
    for await (const chunk of proc.stderr) {
      text += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        for (const m of line.matchAll(/(\w+) (downloading|loading|ready)/g)) mark(`${m[1]}:${m[2]}`);
      }
    }
  })();
  const readOut = (async () => {
    for await (const chunk of proc.stdout) if (chunk.length > 0) mark("token");
  })();
  const code = await proc.exited;
  await Promise.all([readErr, readOut]);
  if (code !== 0) throw new Error(`exo run exited ${code}`);
  const at = (key: string) => {
    const v = firstSeen.get(key);
    if (v === undefined) throw new Error(`exo run never showed ${key}`);
    return v;
  };
  const downloadStart = Math.min(...nodes.map((n) => at(`${n}:downloading`)));
  const loadStart = Math.max(...nodes.map((n) => at(`${n}:loading`)));
  const ready = Math.max(...nodes.map((n) => at(`${n}:ready`)));
  const token = at("token");
  return {
    startup: downloadStart,
    download: loadStart - downloadStart,
    load: ready - loadStart,
    firstToken: token - ready,
    total: token,
  };
}

async function once(nodes: 1 | 2, pull: boolean): Promise<Phases> {
  const aEnv = freshHome();
  const bEnv = freshHome();
  let pullMs: number | undefined;
  if (pull) {
    const t = performance.now();
    // Each node pulls what it will hold: the whole model alone, or its half (equal memory splits 8 layers 4/4).
    await Promise.all(
      nodes === 1
        ? [run(["pull", REPO], aEnv)]
        : [run(["pull", REPO, "--layers", "0:4"], aEnv), run(["pull", REPO, "--layers", "4:8"], bEnv)],
    );
    pullMs = performance.now() - t;
  }
  if (nodes === 1) return { ...(await timedRun(aEnv, ["a"], [])), ...(pullMs !== undefined ? { pullMs } : {}) };
  const peer = await startPeer(bEnv);
  try {
    const config = join(work, `peers-${homes}.json`);
    await Bun.write(config, JSON.stringify({ peers: { b: { address: "127.0.0.1", port: peer.port } } }));
    return { ...(await timedRun(aEnv, ["a", "b"], ["--config", config])), ...(pullMs !== undefined ? { pullMs } : {}) };
  } finally {
    peer.proc.kill();
    await peer.proc.exited;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const rows: Array<{ row: string; nodes: number; pull: boolean } & Phases> = [];
try {
  for (const nodes of [1, 2] as const) {
    for (const pull of [false, true]) {
      const samples: Phases[] = [];
      for (let i = 0; i < runs; i++) samples.push(await once(nodes, pull));
      const pick = (k: keyof Phases) => median(samples.map((s) => s[k] ?? 0));
      rows.push({
        row: `${nodes} node${nodes > 1 ? "s" : ""}, ${pull ? "pull + warm run" : "cold run"}`,
        nodes,
        pull,
        startup: pick("startup"),
        download: pick("download"),
        load: pick("load"),
        firstToken: pick("firstToken"),
        total: pick("total"),
        ...(pull ? { pullMs: pick("pullMs") } : {}),
      });
    }
  }
} finally {
  await hub.stop();
  rmSync(work, { recursive: true, force: true });
}

const ms = (v: number | undefined) => (v === undefined ? "-" : `${Math.round(v)}`);
console.log(
  `cold exo run vs pull + warm run, ${REPO} (~110 MB fp32, 4 files), median of ${runs}, loadavg ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
console.log(
  "| row | exo pull ms | startup ms | download ms | load ms | first token ms | run to first token ms | pull + run ms | cold run / this run | cold run / (pull + run) |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  const cold = rows.find((c) => c.nodes === r.nodes && !c.pull)!;
  const both = r.pull ? (r.pullMs ?? 0) + r.total : undefined;
  const cells = [
    r.row,
    ms(r.pullMs),
    ms(r.startup),
    ms(r.download),
    ms(r.load),
    ms(r.firstToken),
    ms(r.total),
    ms(both),
  ];
  cells.push(
    r.pull ? `${(cold.total / r.total).toFixed(2)}x` : "1.00x",
    both ? `${(cold.total / both).toFixed(2)}x` : "-",
  );
  console.log(`| ${cells.join(" | ")} |`);
}
console.log(JSON.stringify({ bench: "cold-run", runs, loadavg: loadavg(), binary: process.argv[3] ?? null, rows }));
