// Failover recovery (issue 17), side by side in one run: 3 real node processes (fake engine, embedded exo-tiny-chat,
// so every survivor already holds its layers: "cached"), one greedy stream from a, SIGKILL of the middle stage or of
// the last stage after 50 tokens. Per round: the gap from the kill to the next token, split into detection (kill →
// the coordinator starts the failover, seen in its log), re-plan, load and replay (from its "request recovered"
// log line), tokens/s before vs after, and the longest pause after recovery. Rounds alternate the two cases; medians and ratios printed.
// Usage: nice -n 10 bun bench/failover.ts [rounds=3] [fake_step_ms=5] [health_interval_ms=1000]
import { startCluster } from "../test/helpers/cluster-nodes.ts";

const rounds = Number(process.argv[2] ?? 3);
const stepMs = String(process.argv[3] ?? 5);
const healthMs = String(process.argv[4] ?? 1000);
const KILL_AT = 50;
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
}

async function round(victim: "b" | "c"): Promise<Round> {
  const c = await startCluster(
    [
      { id: "a", memoryMb: 6000 },
      { id: "b", memoryMb: 3000 },
      { id: "c", memoryMb: 3000 },
    ],
    ["--engine", "fake", "--fake-step-ms", stepMs, "--health-interval-ms", healthMs],
  );
  try {
    const ask = () =>
      c.client("a").chat.completions.create({
        model: "exo-tiny-chat",
        messages: [{ role: "user", content: "a long story" }],
        max_tokens: 300,
        temperature: 0,
        stream: true,
      });
    for await (const _ of await ask()); // places and loads the model
    const at: number[] = [];
    let killAt = 0;
    let seenDownAt = 0;
    let brokeAt = 0;
    let watch: ReturnType<typeof setInterval> | undefined;
    for await (const chunk of await ask()) {
      if ((chunk.choices[0]?.delta.content ?? "") === "") continue;
      at.push(performance.now());
      if (at.length === KILL_AT) {
        killAt = performance.now();
        c.node(victim).kill("SIGKILL");
        // When the coordinator's pool says the peer is down (its log line), to split detection further.
        watch = setInterval(() => {
          const logs = c.node("a").logs();
          if (!seenDownAt && logs.includes(`peer ${victim} is down`)) seenDownAt = performance.now();
          if (!brokeAt && logs.includes("a request failing over")) brokeAt = performance.now();
        }, 2);
      }
    }
    clearInterval(watch);
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
    const gapMs = at[next]! - killAt;
    if (process.env.BENCH_DEBUG)
      console.error(
        next,
        at
          .slice(KILL_AT - 2, KILL_AT + 12)
          .map((t) => (t - killAt).toFixed(0))
          .join(" "),
      );
    const rate = (from: number, to: number) => ((to - from) * 1000) / (at[to - 1]! - at[from]!);
    return {
      downMs: seenDownAt ? seenDownAt - killAt : Number.NaN,
      brokeMs: brokeAt ? brokeAt - killAt : Number.NaN,
      stallMs: stall,
      gapMs,
      detectMs: brokeAt ? brokeAt - killAt : Number.NaN,
      replanMs,
      loadMs,
      replayMs,
      before: rate(10, KILL_AT),
      after: rate(next, at.length),
    };
  } finally {
    await c.stop();
  }
}

const results: Record<"b" | "c", Round[]> = { b: [], c: [] };
for (let r = 0; r < rounds; r++) {
  for (const v of ["b", "c"] as const) results[v].push(await round(v));
}
const load = (await Bun.$`uptime`.text()).trim();
console.log(
  `failover recovery, ${rounds} rounds per case, fake step ${stepMs} ms, health interval ${healthMs} ms, layers cached; load: ${load}`,
);
console.log(
  "killed       | kill→next token ms | link down seen | failover starts | detect | re-plan | load | replay | tok/s before | tok/s after | after/before | max pause after ms",
);
for (const v of ["b", "c"] as const) {
  const m = (k: keyof Round) => median(results[v].map((x) => x[k]));
  const name = v === "b" ? "middle (b)" : "last (c)  ";
  console.log(
    `${name}   | ${m("gapMs").toFixed(0).padStart(18)} | ${m("downMs").toFixed(0).padStart(14)} | ${m("brokeMs").toFixed(0).padStart(15)} | ${m("detectMs").toFixed(0).padStart(6)} | ${m("replanMs").toFixed(0).padStart(7)} | ${m("loadMs").toFixed(0).padStart(4)} | ${m("replayMs").toFixed(0).padStart(6)} | ${m("before").toFixed(1).padStart(12)} | ${m("after").toFixed(1).padStart(11)} | ${(m("after") / m("before")).toFixed(2).padStart(12)} | ${m("stallMs").toFixed(0).padStart(18)}`,
  );
}
process.exit(0);
