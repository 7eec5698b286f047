// Node ↔ runner tensor transport, side by side in one run: frame bodies over the stdin/stdout pipes
// against tmpfs files whose paths travel in small frames, then the per-step cost of the process boundary.
// Prints a table and one JSON line.
// Usage: bun bench/runner-transport.ts [rounds]
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFakeEngine } from "../src/engine/fake-engine.ts";
import { createRunnerEngine } from "../src/engine/runner-client.ts";
import { encodeFrame, FrameDecoder } from "../src/protocol/frame.ts";
import type { Message } from "../src/protocol/types.ts";

const SHAPES = [
  [1, 1, 2048],
  [1, 128, 2048],
  [1, 512, 8192],
];
const TMP = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

if (process.argv[2] === "--child") await child();
else await parent(Number(process.argv[2] ?? 20));

/** Echo server: pipe frames come back with the same body; file frames come back as a new file. */
async function child(): Promise<void> {
  const out = Bun.stdout.writer();
  const decoder = new FrameDecoder();
  for await (const chunk of Bun.stdin.stream()) {
    for (const msg of decoder.push(chunk)) {
      if (typeof msg.fields.path === "string") {
        const bytes = await Bun.file(msg.fields.path).bytes();
        const path = `${msg.fields.path}.reply`;
        await Bun.write(path, bytes);
        out.write(encodeFrame({ type: "TENSOR", fields: { id: msg.fields.id, path } }));
      } else {
        out.write(encodeFrame({ type: "TENSOR", fields: msg.fields, body: msg.body }));
      }
      await out.flush();
    }
  }
}

async function parent(rounds: number): Promise<void> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--child"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const waiting = new Map<number, (m: Message) => void>();
  void (async () => {
    const decoder = new FrameDecoder();
    for await (const chunk of proc.stdout) for (const m of decoder.push(chunk)) waiting.get(m.fields.id as number)?.(m);
  })();
  let nextId = 1;
  const roundTrip = (fields: Record<string, unknown>, body?: Uint8Array) =>
    new Promise<Message>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      proc.stdin.write(encodeFrame({ type: "TENSOR", fields: { ...fields, id }, body }));
      void proc.stdin.flush();
    });

  const rows: Array<{ shape: string; mb: number; pipeMs: number; fileMs: number; ratio: number }> = [];
  for (const shape of SHAPES) {
    const bytes = new Uint8Array(shape.reduce((a, b) => a * b, 4)).map((_, i) => i & 0xff);
    const pipe = async () => {
      const reply = await roundTrip({ dtype: "float32", shape }, bytes);
      if (reply.body.byteLength !== bytes.byteLength) throw new Error("pipe echo lost bytes");
    };
    const file = async () => {
      const path = join(TMP, `exo-bench-${process.pid}-${nextId}.bin`);
      await Bun.write(path, bytes);
      const reply = await roundTrip({ path });
      const back = await Bun.file(reply.fields.path as string).bytes();
      rmSync(path);
      rmSync(reply.fields.path as string);
      if (back.byteLength !== bytes.byteLength) throw new Error("file echo lost bytes");
    };
    const pipeMs = await median(pipe, rounds);
    const fileMs = await median(file, rounds);
    rows.push({
      shape: `[${shape.join(",")}]`,
      mb: bytes.byteLength / 2 ** 20,
      pipeMs,
      fileMs,
      ratio: pipeMs / fileMs,
    });
  }
  proc.stdin.end();
  await proc.exited;
  const steps = await stepOverhead(rounds * 10);
  console.log("shape            MiB     pipe ms   tmpfs ms   pipe/tmpfs");
  for (const r of rows) {
    console.log(
      `${r.shape.padEnd(16)} ${r.mb.toFixed(3).padStart(7)} ${r.pipeMs.toFixed(3).padStart(9)} ${r.fileMs.toFixed(3).padStart(10)} ${r.ratio.toFixed(2).padStart(11)}`,
    );
  }
  console.log(
    `decode step [1,1,2048] through a fake middle stage: in-process ${steps.inProcessMs.toFixed(3)} ms, runner ${steps.runnerMs.toFixed(3)} ms (+${(steps.runnerMs - steps.inProcessMs).toFixed(3)} ms per step)`,
  );
  console.log(JSON.stringify({ bench: "runner-transport", rounds, tmp: TMP, rows, steps }));
}

/** What the process boundary adds to one decode-sized step: the fake engine in-process vs behind a runner. */
async function stepOverhead(rounds: number): Promise<{ inProcessMs: number; runnerMs: number }> {
  const shard = { modelId: "fake", modelDir: "/nonexistent", layerStart: 1, layerEnd: 2, nLayers: 3 };
  const values = new Float32Array(2048);
  values[1] = 1;
  const input = {
    kind: "hidden" as const,
    tensor: { dtype: "float32" as const, shape: [1, 1, 2048], bytes: new Uint8Array(values.buffer) },
  };
  const sampling = { temperature: 0, topP: 1, topK: 0 };
  const result: Record<string, number> = {};
  for (const [name, engine] of [
    ["inProcessMs", createFakeEngine({ hiddenSize: 2048 })],
    ["runnerMs", createRunnerEngine({ engine: "fake", fake: { hiddenSize: 2048 } })],
  ] as const) {
    await engine.load(shard);
    let n = 0;
    result[name] = await median(async () => void (await engine.step(`r${n++ % 4}`, input, sampling)), rounds);
    await engine.close();
  }
  return { inProcessMs: result.inProcessMs!, runnerMs: result.runnerMs! };
}

/** Median wall time of `fn` over `rounds` runs, after two warm-up runs. */
async function median(fn: () => Promise<void>, rounds: number): Promise<number> {
  await fn();
  await fn();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}
