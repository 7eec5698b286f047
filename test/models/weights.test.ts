// The shard-aware loader: sharded checkpoints with an index, 3/6-bit and float16 checkpoints, the packed
// (Metal) path, the CPU dtype guard, and clear errors for unsupported architectures and broken checkpoints.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { checkpointIndex, guardCpuDtypes, loadShardWeights } from "../../src/engine/weights.ts";
import { dequantizeAffine, dequantizeRows, quantizeAffine } from "../../src/engine/quantize.ts";
import { createLocalEngine } from "../../src/engine/local-engine.ts";
import { getArchitecture } from "../../src/models/index.ts";
import { stageTensorFilter } from "../../src/models/spec/architectures.ts";
import { readConfigFile } from "../../src/models/spec/config-file.ts";
import { parseModelArgs } from "../../src/models/spec/model-args.ts";
import { createKVCache } from "../../src/models/kv-cache.ts";
import { isNodeError } from "../../src/errors.ts";
import { loadStage, TINY_CONFIGS } from "../helpers/tiny-models.ts";

let root = "";
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "exo-weights-"));
});
afterAll(() => root && rmSync(root, { recursive: true, force: true }));
const PROMPT = [1, 5, 9, 33, 70];
const logitsOf = async (dir: string) => {
  const { model } = await loadStage(dir, 0, 4);
  const out = model.forward(mx.array([PROMPT], mx.int32), createKVCache(model.cacheSpec));
  mx.eval(out);
  return out;
};
const relErr = (a: mx.array, b: mx.array) =>
  Number(mx.divide(mx.sqrt(mx.sum(mx.square(mx.subtract(a, b)))), mx.sqrt(mx.sum(mx.square(b)))).item());

describe("affine quantization", () => {
  const w = mx.random.uniform(-1, 1, [40, 256], mx.float32, mx.random.key(9));

  test("every bit width round-trips within half a quantization step", () => {
    for (const bits of [2, 3, 4, 5, 6, 8]) {
      const [q, scales, biases] = quantizeAffine(w, 64, bits);
      expect(q.shape).toEqual([40, (256 * bits) / 32]);
      const err = mx.subtract(dequantizeAffine(q, scales, biases, 64, bits), w);
      const halfStep = mx.divide(mx.expandDims(scales, -1), 2);
      const over = mx.greater(mx.abs(err.reshape(40, 4, 64)), mx.add(halfStep, 1e-6));
      expect(Number(mx.sum(over).item())).toBe(0);
    }
  });

  test("the generic unpacker agrees bit for bit with the binding's kernel at 4 and 8 bits, and row chunks change nothing", async () => {
    for (const bits of [4, 8]) {
      const [q, scales, biases] = mx.quantize(w, 64, bits) as unknown as [mx.array, mx.array, mx.array];
      const native = mx.dequantize(q, scales, biases, 64, bits);
      expect(Number(mx.max(mx.abs(mx.subtract(dequantizeAffine(q, scales, biases, 64, bits), native))).item())).toBe(0);
    }
    const [q3, s3, b3] = quantizeAffine(mx.random.uniform(-1, 1, [1500, 256], mx.float32, mx.random.key(3)), 64, 3);
    const diff = mx.subtract(await dequantizeRows(q3, s3, b3, 64, 3), dequantizeAffine(q3, s3, b3, 64, 3));
    expect(Number(mx.max(mx.abs(diff)).item())).toBe(0);
  });
});

describe("loadShardWeights", () => {
  test("with an index over several files, a stage opens only the files holding its tensors", async () => {
    const dir = join(root, "multi");
    const { files } = await writeRandomCheckpoint(dir, { config: TINY_CONFIGS.llama!, seed: 1, maxFileBytes: 40_000 });
    expect(files.length).toBeGreaterThan(3);
    const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as {
      weight_map: Record<string, string>;
    };
    const middle = await loadStage(dir, 1, 3);
    const expected = new Set(
      Object.entries(index.weight_map)
        .filter(([n]) => /^model\.layers\.[12]\./.test(n))
        .map(([, f]) => f),
    );
    expect(new Set(middle.files)).toEqual(expected);
    expect(middle.files.length).toBeLessThan(files.length);
    const single = join(root, "single");
    await writeRandomCheckpoint(single, { config: TINY_CONFIGS.llama!, seed: 1 });
    expect(Number(mx.max(mx.abs(mx.subtract(await logitsOf(dir), await logitsOf(single)))).item())).toBe(0);
  });

  test("3-bit and 6-bit checkpoints (as mlx-community ships) load and track the float32 model", async () => {
    const f32 = join(root, "q-ref");
    await writeRandomCheckpoint(f32, { config: TINY_CONFIGS.qwen2!, seed: 2 });
    const reference = await logitsOf(f32);
    const errs: number[] = [];
    for (const bits of [3, 6]) {
      const dir = join(root, `q${bits}`);
      await writeRandomCheckpoint(dir, { config: TINY_CONFIGS.qwen2!, seed: 2, quantize: { bits, groupSize: 64 } });
      errs.push(relErr(await logitsOf(dir), reference));
    }
    expect(errs[1]!).toBeLessThan(0.2);
    expect(errs[0]!).toBeLessThan(1);
    expect(errs[0]! / errs[1]!).toBeGreaterThan(2);
  });

  test("a float16 checkpoint is upcast to float32 on CPU", async () => {
    const dir = join(root, "f16");
    await writeRandomCheckpoint(dir, { config: TINY_CONFIGS.phi3!, seed: 3, dtype: "float16" });
    const args = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    expect(args.model_type).toBe("phi3");
    const { weights } = await loadShardWeights(dir, () => true, { native: false });
    for (const t of weights.values()) expect(t.dtype).toBe(mx.float32);
    const f32 = join(root, "f16-ref");
    await writeRandomCheckpoint(f32, { config: TINY_CONFIGS.phi3!, seed: 3 });
    expect(relErr(await logitsOf(dir), await logitsOf(f32))).toBeLessThan(0.01);
  });

  test("native mode (the Metal path) keeps 4-bit weights packed, runs quantizedMatmul, and matches the dequantized model", async () => {
    // Wide enough for the binding's quantized kernels; float32 scales so the CPU can run them.
    const config = {
      ...TINY_CONFIGS.llama!,
      hidden_size: 256,
      intermediate_size: 512,
      tie_word_embeddings: true,
      rope_scaling: null,
    };
    const dir = join(root, "native-q4");
    await writeRandomCheckpoint(dir, { config, seed: 5, quantize: { bits: 4, groupSize: 64 } });
    const args = parseModelArgs(await readConfigFile(dir));
    const range = { layerStart: 0, layerEnd: 4, nLayers: 4 };
    const arch = getArchitecture("llama");
    const run = async (native: boolean) => {
      const { weights } = await loadShardWeights(dir, stageTensorFilter(args, range, checkpointIndex(dir).keys()), {
        native,
        quantization: args.quantization,
      });
      const model = arch.create(args, range, weights);
      const out = model.forward(mx.array([PROMPT], mx.int32), createKVCache(model.cacheSpec));
      mx.eval(out);
      return { out, packed: [...weights.values()].some((t) => t.dtype === mx.uint32) };
    };
    const packed = await run(true);
    const dequantized = await run(false);
    expect(packed.packed).toBe(true);
    expect(dequantized.packed).toBe(false);
    expect(Number(mx.max(mx.abs(mx.subtract(packed.out, dequantized.out))).item())).toBeLessThan(1e-4);
  });

  test("the CPU dtype guard refuses any tensor that is not float32, naming it", () => {
    const weights = new Map([
      ["ok.weight", mx.zeros([2, 2], mx.float32)],
      ["bad.weight", mx.zeros([2, 2], mx.float16)],
    ]);
    expect(() => guardCpuDtypes(weights)).toThrow(/bad\.weight is float16/);
  });

  test("an unknown model_type is refused with E_MODEL_UNSUPPORTED naming it", async () => {
    const err = (() => {
      try {
        getArchitecture("mamba");
      } catch (e) {
        return e;
      }
    })();
    expect(isNodeError(err) && err.code).toBe("E_MODEL_UNSUPPORTED");
    expect(String((err as Error).message)).toContain('"mamba"');
  });

  test("a missing tensor or missing safetensors file fails the load with E_WEIGHTS", async () => {
    const dir = join(root, "broken");
    await writeRandomCheckpoint(dir, { config: TINY_CONFIGS.llama!, seed: 4 });
    const shard = { modelId: "broken", modelDir: dir, layerStart: 0, layerEnd: 4, nLayers: 4 };
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 5 }));
    const engine = createLocalEngine();
    const wrongLayers = await engine.load({ ...shard, nLayers: 5, layerEnd: 5 }).catch((e: unknown) => e);
    expect(isNodeError(wrongLayers) && wrongLayers.code).toBe("E_WEIGHTS");
    expect(String((wrongLayers as Error).message)).toContain("model.layers.4.");
    unlinkSync(join(dir, "model.safetensors"));
    const noFile = await engine.load({ ...shard, nLayers: 5 }).catch((e: unknown) => e);
    expect(isNodeError(noFile) && noFile.code).toBe("E_WEIGHTS");
    expect(engine.loaded()).toBeUndefined();
  });
});
