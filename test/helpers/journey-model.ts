// The checkpoint of the hub-journey tests: a random 16-layer Llama (scripts/make-random-model.ts, untied head,
// the embedded model's byte tokenizer and chat template), kept unsplit in one directory and re-cut by layer
// ranges into several safetensors files plus an index, as a fake-hub repo. Which file holds which tensor is
// chosen here, so a test can say exactly which files each stage must fetch.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { FixtureFile, FixtureRepo } from "./fake-hub.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** 16 layers (the catalog's llama-3.2-1b has 16), tiny everywhere else; the vocabulary follows the tokenizer. */
export const JOURNEY_LAYERS = 16;

/** Layers per weight file: file k holds layers [start, end); the first also the embedding, the last norm + head. */
export const JOURNEY_FILE_LAYERS: Array<[number, number]> = [
  [0, 4],
  [4, 8],
  [8, 12],
  [12, 16],
];

/** File names of JOURNEY_FILE_LAYERS, in order. */
export const JOURNEY_WEIGHT_FILES = JOURNEY_FILE_LAYERS.map((_, k) => shardName(k, JOURNEY_FILE_LAYERS.length));

/** The non-weight files of the repo: what a coordinator needs for the tokenizer and chat template. */
export const JOURNEY_SUPPORT_FILES = [
  "config.json",
  "generation_config.json",
  "model.safetensors.index.json",
  "tokenizer.json",
  "tokenizer_config.json",
];

/** Sizes of the checkpoint; the journey's are tiny, a benchmark may ask for more. */
export interface JourneyDims {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
}

export const JOURNEY_DIMS: JourneyDims = { hidden: 32, layers: JOURNEY_LAYERS, heads: 2, kvHeads: 1, intermediate: 64 };

/** Writes the unsplit checkpoint into `dir` (one model.safetensors) with make-random-model. */
export async function makeJourneyCheckpoint(dir: string, dims: JourneyDims = JOURNEY_DIMS): Promise<void> {
  const args = ["--hidden", String(dims.hidden), "--layers", String(dims.layers), "--heads", String(dims.heads)];
  args.push(
    "--kv-heads",
    String(dims.kvHeads),
    "--intermediate",
    String(dims.intermediate),
    "--seed",
    "11",
    "--out",
    dir,
    "--tokenizer-from",
    join(ROOT, "configs/default-model"),
  );
  const make = Bun.spawn([process.execPath, join(ROOT, "scripts/make-random-model.ts"), ...args], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "pipe",
  });
  if ((await make.exited) !== 0) throw new Error(`make-random-model failed: ${await new Response(make.stderr).text()}`);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  if (config.tie_word_embeddings !== false) throw new Error("the journey checkpoint must have an untied head");
}

/** The unsplit checkpoint in `dir` as a hub repo named `id`, its weights cut into files by `fileLayers`. */
export function journeyRepo(
  id: string,
  dir: string,
  fileLayers: Array<[number, number]> = JOURNEY_FILE_LAYERS,
): FixtureRepo {
  const tensors = readSafetensors(join(dir, "model.safetensors"));
  const n = fileLayers.length;
  const fileOf = (name: string): number => {
    const layer = /^model\.layers\.(\d+)\./.exec(name)?.[1];
    if (layer !== undefined) return fileLayers.findIndex(([s, e]) => Number(layer) >= s && Number(layer) < e);
    if (name.startsWith("model.embed_tokens.")) return 0;
    if (name.startsWith("lm_head.") || name.startsWith("model.norm.")) return n - 1;
    throw new Error(`journey checkpoint: no file for tensor ${name}`);
  };
  const groups = Array.from({ length: n }, () => new Map<string, Tensor>());
  for (const [name, t] of tensors) {
    const group = groups[fileOf(name)];
    if (!group) throw new Error(`journey checkpoint: no file holds the layer of ${name}`);
    group.set(name, t);
  }
  const weightMap: Record<string, string> = {};
  const weights: FixtureFile[] = groups.map((group, k) => {
    for (const name of group.keys()) weightMap[name] = shardName(k, n);
    return { path: shardName(k, n), bytes: writeSafetensors(group) };
  });
  const index = {
    metadata: { total_size: weights.reduce((s, f) => s + (f.bytes?.length ?? 0), 0) },
    weight_map: weightMap,
  };
  const support: FixtureFile[] = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => ({ path: f, diskPath: join(dir, f) }));
  const encoded = new TextEncoder().encode(JSON.stringify(index, null, 1));
  return { id, files: [...support, { path: "model.safetensors.index.json", bytes: encoded }, ...weights] };
}

/** Every file name in a node's HF cache for `repo` (its snapshot), sorted; [] when the repo is not cached. */
export function cachedFiles(hubCacheDir: string, repo: string): string[] {
  const snapshots = join(hubCacheDir, `models--${repo.replace("/", "--")}`, "snapshots");
  if (!existsSync(snapshots)) return [];
  return readdirSync(snapshots)
    .flatMap((commit) => readdirSync(join(snapshots, commit)))
    .sort();
}

// --- internal ---

interface Tensor {
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

function shardName(k: number, n: number): string {
  return `model-${String(k + 1).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
}

function readSafetensors(path: string): Map<string, Tensor> {
  const buf = readFileSync(path);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const out = new Map<string, Tensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const start = 8 + headerLength;
    out.set(name, {
      dtype: e.dtype,
      shape: e.shape,
      bytes: buf.subarray(start + e.data_offsets[0], start + e.data_offsets[1]),
    });
  }
  return out;
}

function writeSafetensors(tensors: Map<string, Tensor>): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}
