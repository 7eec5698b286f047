// Trains the embedded default model (exo-tiny-chat) from scratch and writes it to configs/default-model/.
// Deterministic: fixed seeds for the corpus and the weights. Run with `nice -n 10 bun scripts/train-default-model.ts`;
// `--files-only` rewrites just the config and tokenizer files.
import { core as mx } from "@frost-beta/mlx";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createTokenizer } from "../src/tokenizer/tokenizer.ts";
import { makeBatcher } from "./default-model/batches.ts";
import * as hf from "./default-model/hf-files.ts";
import { heldOutSet, makeConversationStream, type TaskExample } from "./default-model/tasks.ts";
import {
  createAdam,
  greedyAnswer,
  initParams,
  lossFn,
  segmentMask,
  views,
  type Params,
} from "./default-model/train-llama.ts";

const { values: args } = parseArgs({
  options: {
    steps: { type: "string", default: "4500" },
    out: { type: "string", default: "configs/default-model" },
    "eval-prompts": { type: "string", default: "150" },
    "log-every": { type: "string", default: "100" },
    "eval-every": { type: "string", default: "0" },
    "files-only": { type: "boolean", default: false },
  },
});
const STEPS = Number(args.steps);
const LOG_EVERY = Number(args["log-every"]);
const EVAL_EVERY = Number(args["eval-every"]);
// Rows of 64: the binding's attention costs far more per token at 96 (measured ~2x per step).
const ROWS = 24;
const ROW_LENGTH = 64;
const PEAK_LR = 3e-3;
const WARMUP = 100;
const SEED = 1234;

const tokenizer = createTokenizer(
  { tokenizerJson: hf.tokenizerJson(), tokenizerConfig: hf.tokenizerConfigJson(), config: hf.configJson() },
  hf.MODEL_ID,
);

/** Warmup (Adam's first steps are noisy), then cosine decay to a tenth of the peak. */
const learningRate = (step: number) =>
  step < WARMUP
    ? (PEAK_LR * (step + 1)) / WARMUP
    : PEAK_LR * (0.1 + 0.45 * (1 + Math.cos((Math.PI * (step - WARMUP)) / Math.max(1, STEPS - WARMUP))));

/** MLX frees buffers only when finalizers run, which needs GC and a turn of the event loop (mlx-notes §4). */
const releaseMemory = async () => {
  Bun.gc(true);
  await new Promise((r) => setImmediate(r));
};

async function evaluate(params: Params, tasks: TaskExample[]): Promise<number> {
  let right = 0;
  const misses: string[] = [];
  for (const t of tasks) {
    const got = greedyAnswer(params, tokenizer, t.prompt);
    await releaseMemory();
    if (got === t.answer) right++;
    else if (misses.length < 8) misses.push(`${t.prompt} → ${JSON.stringify(got)} (want ${t.answer})`);
  }
  for (const m of misses) console.log(`  miss: ${m}`);
  return right / tasks.length;
}

async function train(): Promise<Params> {
  const params = initParams(SEED);
  const adam = createAdam(params, { beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: 0.01 });
  // A flat list of parameter arrays: nested objects get their gradients mismatched under Bun (mlx-notes §10).
  const valueAndGrad = mx.valueAndGrad(lossFn, 0);
  const nextBatch = makeBatcher(tokenizer, makeConversationStream(SEED), ROWS, ROW_LENGTH);
  const started = performance.now();
  let lossSum = 0;
  for (let step = 0; step < STEPS; step++) {
    const b = nextBatch();
    const [loss, grads] = valueAndGrad(
      views(params),
      mx.array(b.tokens, mx.int32),
      mx.array(b.targets, mx.int32),
      mx.array(b.weights, mx.float32),
      segmentMask(b.segments),
    ) as unknown as [mx.array, mx.array[]];
    adam(grads, learningRate(step), 1);
    lossSum += loss.item() as number;
    if ((step + 1) % 4 === 0) await releaseMemory();
    if ((step + 1) % LOG_EVERY === 0) {
      const seconds = (performance.now() - started) / 1000;
      const lr = learningRate(step).toExponential(2);
      console.log(
        `step ${step + 1}/${STEPS} loss ${(lossSum / LOG_EVERY).toFixed(4)} lr ${lr} ${seconds.toFixed(0)} s`,
      );
      lossSum = 0;
    }
    if (EVAL_EVERY > 0 && (step + 1) % EVAL_EVERY === 0) {
      const score = await evaluate(params, heldOutSet(30, 7));
      console.log(`step ${step + 1}: held-out ${(score * 100).toFixed(0)}% (30 prompts)`);
    }
  }
  console.log(`trained ${STEPS} steps in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return params;
}

/** Writes config, generation config and tokenizer files (everything but the weights). */
async function writeHfFiles(out: string): Promise<void> {
  mkdirSync(out, { recursive: true });
  const writeJson = (name: string, value: object) => Bun.write(join(out, name), `${JSON.stringify(value, null, 2)}\n`);
  await writeJson("config.json", hf.configJson());
  await writeJson("generation_config.json", hf.generationConfigJson());
  await writeJson("tokenizer.json", hf.tokenizerJson());
  await writeJson("tokenizer_config.json", hf.tokenizerConfigJson());
}

async function main(): Promise<void> {
  await writeHfFiles(args.out);
  if (args["files-only"]) return console.log(`wrote the config and tokenizer files to ${args.out}`);
  const params = await train();
  const score = await evaluate(params, heldOutSet(Number(args["eval-prompts"])));
  console.log(`held-out exact match ${(score * 100).toFixed(1)}% (training forward; the engine test is the reference)`);
  const tensors = views(params);
  const weights: Record<string, mx.array> = {};
  params.names.forEach((name, i) => (weights[name] = tensors[i]!));
  mx.saveSafetensors(join(args.out, "model.safetensors"), weights, { format: "pt" });
  console.log(`wrote ${args.out}`);
}

await main();
