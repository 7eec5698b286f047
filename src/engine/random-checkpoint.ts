// Writes an HF-format checkpoint (config.json + model*.safetensors [+ index]) with deterministic random
// weights for any registered architecture: tests, benchmarks and scripts/make-random-model.ts use it.
import { core as mx } from "@frost-beta/mlx";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { architectureSpec } from "../models/spec/architectures.ts";
import { CONFIG_FILE } from "../models/spec/config-file.ts";
import { parseModelArgs } from "../models/spec/model-args.ts";
import { releaseMemory } from "./memory.ts";
import { quantizeRows } from "./quantize.ts";

export interface RandomCheckpointOptions {
  /** The HF config.json to write (model_type and sizes); a quantization block is added when quantizing. */
  config: Record<string, unknown>;
  seed?: number;
  /** Storage dtype of float tensors (and of scales/biases). Default float32. */
  dtype?: "float32" | "bfloat16" | "float16";
  /** Quantize every 2-D weight (linears, embedding, head) like mlx-community does. */
  quantize?: { bits: number; groupSize: number };
  /** Split into model-0000i-of-0000n.safetensors + index when a file would pass this size. Default 2 GiB. */
  maxFileBytes?: number;
}

export interface RandomCheckpoint {
  files: string[];
  tensorNames: string[];
}

const DTYPES = { float32: mx.float32, bfloat16: mx.bfloat16, float16: mx.float16 } as const;

/** Writes the checkpoint into `dir` (created if needed). Same options + seed → same bytes. */
export async function writeRandomCheckpoint(dir: string, opts: RandomCheckpointOptions): Promise<RandomCheckpoint> {
  mkdirSync(dir, { recursive: true });
  const config: Record<string, unknown> = { ...opts.config };
  if (opts.quantize) config.quantization = { group_size: opts.quantize.groupSize, bits: opts.quantize.bits };
  const args = parseModelArgs(config);
  const shapes = architectureSpec(args.modelType).tensorShapes(args);
  const names = Object.keys(shapes).sort();
  const dtype = DTYPES[opts.dtype ?? "float32"];
  const maxFileBytes = opts.maxFileBytes ?? 2 * 1024 ** 3;
  const keys = mx.random.split(mx.random.key(opts.seed ?? 0), names.length);
  const gemmaNorm = args.modelType.startsWith("gemma");

  let current: Record<string, mx.array> = {};
  let currentBytes = 0;
  const groupOf: Record<string, number> = {};
  let groupCount = 0;
  const flush = () => {
    if (Object.keys(current).length === 0) return;
    groupCount++;
    mx.saveSafetensors(join(dir, `group-${groupCount}.safetensors`), current, { format: "mlx" });
    for (const n of Object.keys(current)) groupOf[n] = groupCount;
    current = {};
    currentBytes = 0;
  };

  for (const [i, name] of names.entries()) {
    const shape = shapes[name]!;
    const key = keys.index(i);
    // Uniform noise with the wanted std: 5x faster than random.normal on this CPU (1.2B params in ~15 s).
    const std = shape.length === 1 ? 0.1 : 1 / Math.sqrt(shape[shape.length - 1]!);
    const noise = mx.random.uniform(-std * Math.sqrt(3), std * Math.sqrt(3), shape, mx.float32, key);
    const t = shape.length === 1 && name.endsWith("norm.weight") && !gemmaNorm ? mx.add(noise, 1) : noise;
    const out: Record<string, mx.array> = {};
    const prefix = name.replace(/\.weight$/, "");
    if (opts.quantize && shape.length === 2 && name.endsWith(".weight")) {
      const [w, s, b] = await quantizeRows(t, opts.quantize.groupSize, opts.quantize.bits);
      Object.assign(out, { [name]: w, [`${prefix}.scales`]: s.astype(dtype), [`${prefix}.biases`]: b.astype(dtype) });
    } else {
      out[name] = t.astype(dtype);
    }
    mx.eval(...Object.values(out));
    Object.assign(current, out);
    currentBytes += Object.values(out).reduce((s, a) => s + a.size * a.itemsize, 0);
    if (currentBytes >= maxFileBytes) {
      flush();
      await releaseMemory();
    }
  }
  flush();
  await releaseMemory();

  const fileName = (g: number) =>
    groupCount === 1
      ? "model.safetensors"
      : `model-${String(g).padStart(5, "0")}-of-${String(groupCount).padStart(5, "0")}.safetensors`;
  const files: string[] = [];
  for (let g = 1; g <= groupCount; g++) {
    renameSync(join(dir, `group-${g}.safetensors`), join(dir, fileName(g)));
    files.push(fileName(g));
  }
  const weightMap = Object.fromEntries(Object.entries(groupOf).map(([n, g]) => [n, fileName(g)]));
  if (groupCount > 1)
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }, null, 1),
    );
  writeFileSync(join(dir, CONFIG_FILE), JSON.stringify(config, null, 2));
  return { files, tensorNames: Object.keys(weightMap).sort() };
}
