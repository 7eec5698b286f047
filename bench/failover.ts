// Failover recovery (issue 17), side by side in one run: 3 real node processes, one greedy stream from a, SIGKILL of
// a stage after 50 tokens. Per round: the gap from the kill to the next token, split into detection (kill → the
// coordinator starts the failover, seen in its log), re-plan, load and replay (from its "request recovered" log
// line), tokens/s before vs after and vs the same span of the no-fault answer (with MLX a piece of text can be
// several byte tokens, so only the same span compares), and the longest pause after recovery. Rounds alternate the
// cases; medians and ratios printed. Two groups of cases:
// - fake: the fake engine on the embedded exo-tiny-chat (every survivor already holds its layers), the middle vs the
//   last stage killed;
// - mlx: the MLX engine on a random 16-layer Llama (bench/failover-model.ts), the middle stage killed; the survivor
//   that takes over most of its layers has them cached vs must fetch them from a peer (the coordinator, the only
//   node holding the whole model; no hub).
// Usage: nice -n 10 bun bench/failover.ts [rounds=3] [fake_step_ms=5] [health_interval_ms=1000] [groups=fake,mlx]
//        [hidden=512]
import { startCluster, type TestCluster } from "../test/helpers/cluster-nodes.ts";
import { failoverModel, type FailoverModel } from "./failover-model.ts";

const rounds = Number(process.argv[2] ?? 3);
const stepMs = String(process.argv[3] ?? 5);
const healthMs = String(process.argv[4] ?? 1000);
const groups = (process.argv[5] ?? "fake,mlx").split(",");
const hidden = Number(process.argv[6] ?? 512);
const KILL_AT = 50;
const MAX_TOKENS = 300;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

interface Round {
  /** Kill → the coordinator's log says the peer is down. */
  downMs: number;
  /** Kill → the coordinator's log says the request is failing over. */
  brokeMs: number;
  /** Longest pause between two tokens after the recovered one. */
  stallMs: number;
  gapMs: number;
  detectMs: number;
  replanMs: number;
  loadMs: number;
  replayMs: number;
  before: number;
  after: number;
  /** The same span of the answer as `after`, in the no-fault stream (same text: greedy). */
  noFault: number;
  /** 1 when the recovered answer equals the no-fault answer of the same cluster. */
  same: number;
  /** Weight files the survivors added to their caches during the failover (mlx cases). */
  fetched: number;
}

/** One case: how to start its cluster, the model to ask, the stage to kill. */
interface Case {
  name: string;
  victim: string;
  model: string;
  start(): Promise<TestCluster>;
  /** Weight files in the caches of the survivors (0 when the case does not count them). */
  weightFiles?(c: TestCluster): number;
}

async function round(k: Case): Promise<Round> {
  const c = await k.start();
  try {
    const ask = () =>
      c.client("a").chat.completions.create({
        model: k.model,
        messages: [{ role: "user", content: "a long story" }],
        max_tokens: MAX_TOKENS,
        temperature: 0,
        stream: true,
      });
    // The no-fault answer (it also places and loads the model), its pieces timed like the measured one's.
    let reference = "";
    const refAt: number[] = [];
    for await (const chunk of await ask()) {
      const piece = chunk.choices[0]?.delta.content ?? "";
      if (piece === "") continue;
      reference += piece;
      refAt.push(performance.now());
    }
    const filesBefore = k.weightFiles?.(c) ?? 0;
    const at: number[] = [];
    let text = "";
    let killAt = 0;
    let seenDownAt = 0;
    let brokeAt = 0;
    let watch: ReturnType<typeof setInterval> | undefined;
    for await (const chunk of await ask()) {
      const piece = chunk.choices[0]?.delta.content ?? "";
      if (piece === "") continue;
      text += piece;
      at.push(performance.now());
      if (at.length === KILL_AT) {
        killAt = performance.now();
        c.node(k.victim).kill("SIGKILL");
        // When the coordinator's pool says the peer is down (its log line), to split detection further.
        watch = setInterval(() => {
          const logs = c.node("a").logs();
          if (!seenDownAt && logs.includes(`peer ${k.victim} is down`)) seenDownAt = performance.now();
          if (!brokeAt && logs.includes("a request failing over")) brokeAt = performance.now();
        }, 2);
      }
    }
    clearInterval(watch);
    if (at.length <= KILL_AT) throw new Error(`${k.name}: the answer ended after ${at.length} pieces, before the kill`);
    const line = c
      .node("a")
      .logs()
      .match(/re-plan (\d+) ms, load (\d+) ms, replay (\d+) ms/);
    if (!line) throw new Error(`no recovery line in a's log:\n${c.node("a").logs()}`);
    const [replanMs, loadMs, replayMs] = line.slice(1, 4).map(Number) as [number, number, number];
    // The recovered token: the first one that arrived after the coordinator began the failover.
    let next = KILL_AT;
    while (next < at.length - 1 && at[next]! <= brokeAt) next++;
    let stall = 0;
    for (let i = next + 1; i < at.length; i++) stall = Math.max(stall, at[i]! - at[i - 1]!);
    if (process.env.BENCH_DEBUG)
      console.error(
        k.name,
        next,
        at
          .slice(KILL_AT - 2, KILL_AT + 12)
          .map((t) => (t - killAt).toFixed(0))
          .join(" "),
      );
    const rate = (from: number, to: number, times = at) => ((to - from) * 1000) / (times[to - 1]! - times[from]!);
    return {
      downMs: seenDownAt ? seenDownAt - killAt : Number.NaN,
      brokeMs: brokeAt ? brokeAt - killAt : Number.NaN,
      stallMs: stall,
      gapMs: at[next]! - killAt,
      detectMs: brokeAt ? brokeAt - killAt : Number.NaN,
      replanMs,
      loadMs,
      replayMs,
      before: rate(10, KILL_AT),
      after: rate(next, at.length),
      noFault: refAt.length === at.length ? rate(next, at.length, refAt) : Number.NaN,
      same: text === reference ? 1 : 0,
      fetched: (k.weightFiles?.(c) ?? 0) - filesBefore,
    };
  } finally {
    await c.stop();
  }
}

const fakeArgs = ["--engine", "fake", "--fake-step-ms", stepMs, "--health-interval-ms", healthMs];
const fakeCluster = () =>
  startCluster(
    [
      { id: "a", memoryMb: 6000 },
      { id: "b", memoryMb: 3000 },
      { id: "c", memoryMb: 3000 },
    ],
    fakeArgs,
  );

async function runGroup(title: string, cases: Case[]): Promise<void> {
  const results = new Map<Case, Round[]>(cases.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) for (const k of cases) results.get(k)!.push(await round(k));
  const load = (await Bun.$`uptime`.text()).trim();
  console.log(`\n${title}; ${rounds} rounds per case, health interval ${healthMs} ms; load: ${load}`);
  console.log(
    "case                  | kill→next token ms | link down seen | failover starts | detect | re-plan |  load | replay | tok/s before | tok/s after | after/before | no-fault same span | after/no-fault | max pause after ms | files fetched | same answer",
  );
  const medians = new Map<Case, (key: keyof Round) => number>();
  for (const k of cases) {
    const rs = results.get(k)!;
    const m = (key: keyof Round) => median(rs.map((x) => x[key]));
    medians.set(k, m);
    const cell = (key: keyof Round, width: number, digits = 0) => m(key).toFixed(digits).padStart(width);
    console.log(
      `${k.name.padEnd(21)} | ${cell("gapMs", 18)} | ${cell("downMs", 14)} | ${cell("brokeMs", 15)} | ${cell("detectMs", 6)} | ${cell("replanMs", 7)} | ${cell("loadMs", 5)} | ${cell("replayMs", 6)} | ${cell("before", 12, 1)} | ${cell("after", 11, 1)} | ${(m("after") / m("before")).toFixed(2).padStart(12)} | ${cell("noFault", 18, 1)} | ${(m("after") / m("noFault")).toFixed(2).padStart(14)} | ${cell("stallMs", 18)} | ${cell("fetched", 13)} | ${`${rs.filter((x) => x.same).length}/${rs.length}`.padStart(11)}`,
    );
  }
  const [first, second] = cases;
  if (first && second) {
    const ratio = (key: keyof Round) => (medians.get(second)!(key) / medians.get(first)!(key)).toFixed(2);
    console.log(
      `${second.name} / ${first.name}: kill→next token ×${ratio("gapMs")}, load ×${ratio("loadMs")}, replay ×${ratio("replayMs")}`,
    );
  }
}

if (groups.includes("fake"))
  await runGroup(`fake engine (step ${stepMs} ms), exo-tiny-chat, layers cached`, [
    { name: "middle (b) killed", victim: "b", model: "exo-tiny-chat", start: fakeCluster },
    { name: "last (c) killed", victim: "c", model: "exo-tiny-chat", start: fakeCluster },
  ]);
if (groups.includes("mlx")) {
  const model: FailoverModel = await failoverModel(hidden);
  try {
    const mlxCase = (name: string, survivorsCached: boolean): Case => ({
      name,
      victim: "b",
      model: model.id,
      start: () => model.startCluster(survivorsCached, ["--health-interval-ms", healthMs]),
      weightFiles: (c) => model.weightFiles(c, ["a", "c"]),
    });
    await runGroup(`MLX engine, ${model.describe}, middle stage (b) killed`, [
      mlxCase("layers cached", true),
      mlxCase("layers from a peer", false),
    ]);
  } finally {
    model.dispose();
  }
}
process.exit(0);
