// Mixture-of-Experts machinery: the switch layer's two paths (per token × slot, grouped by expert) against
// a per-token loop, float and packed stacks, the softmax router by hand, the CPU dtype guard, and qwen3_moe
// checkpoints as people get them (weights across files, mlx-community's stacked 4-bit experts with an 8-bit
// router) against the float64 reference and the unquantized model.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { weightFilesForStage } from "../../src/download/select-files.ts";
import { quantizeRows } from "../../src/engine/quantize.ts";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { checkpointIndex, loadShardWeights } from "../../src/engine/weights.ts";
import { isNodeError } from "../../src/errors.ts";
import type { ShardModel } from "../../src/models/base.ts";
import { createKVCache } from "../../src/models/kv-cache.ts";
import { softmaxTopK } from "../../src/models/routing.ts";
import { stageTensorFilter } from "../../src/models/spec/architectures.ts";
import { readConfigFile } from "../../src/models/spec/config-file.ts";
import { parseModelArgs } from "../../src/models/spec/model-args.ts";
import { switchGLU, type ExpertStack, type SwitchGLU } from "../../src/models/switch-layer.ts";
import { referenceLogits } from "../helpers/reference-forward.ts";
import { loadStage, TINY_CONFIGS } from "../helpers/tiny-models.ts";

const PROMPT = [3, 17, 42, 99, 5, 64, 7, 120, 11, 2];
const E = 6;
const H = 64;
const I = 32;

let root = "";
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "exo-moe-"));
});
afterAll(() => root && rmSync(root, { recursive: true, force: true }));

const maxAbsDiff = (a: mx.array, b: mx.array) => Number(mx.max(mx.abs(mx.subtract(a, b))).item());
const relErr = (a: mx.array, b: mx.array) =>
  Number(mx.divide(mx.sqrt(mx.sum(mx.square(mx.subtract(a, b)))), mx.sqrt(mx.sum(mx.square(b)))).item());

function logitsOf(stages: ShardModel[], tokens: number[]): mx.array {
  let h = mx.array([tokens], mx.int32);
  for (const s of stages) h = s.forward(h, createKVCache(s.cacheSpec));
  mx.eval(h);
  return h;
}

/** Σₖ w·SwiGLU_e(x) one token and one slot at a time, with plain matmuls on each expert's own matrices. */
function loopReference(gate: mx.array, up: mx.array, down: mx.array, x: mx.array, experts: number[][], w: number[][]) {
  const rows: mx.array[] = [];
  for (let t = 0; t < experts.length; t++) {
    const xt = x.index(mx.Slice(t, t + 1));
    let acc = mx.zeros([1, H]);
    for (let j = 0; j < experts[t]!.length; j++) {
      const e = experts[t]![j]!;
      const g = mx.matmul(xt, gate.index(e).T);
      const u = mx.matmul(xt, up.index(e).T);
      const h = mx.multiply(mx.multiply(g, mx.sigmoid(g)), u);
      acc = mx.add(acc, mx.multiply(mx.matmul(h, down.index(e).T), w[t]![j]!));
    }
    rows.push(acc);
  }
  return mx.concatenate(rows, 0);
}

describe("switch layer", () => {
  const stack = (out: number, inF: number, seed: number) =>
    mx.random.uniform(-0.2, 0.2, [E, out, inF], mx.float32, mx.random.key(seed));
  const gate = stack(I, H, 1);
  const up = stack(I, H, 2);
  const down = stack(H, I, 3);
  const floats: SwitchGLU = { numExperts: E, gate: { weight: gate }, up: { weight: up }, down: { weight: down } };
  const T = 9;
  const x = mx.random.normal([T, H], mx.float32, 0, 1, mx.random.key(4));
  const routing = softmaxTopK(mx.random.normal([T, E], mx.float32, 0, 1, mx.random.key(5)), 2, true);

  test("per-pair (blockSparseMM) and grouped-by-expert paths both equal a per-token loop", () => {
    const ref = loopReference(
      gate,
      up,
      down,
      x,
      routing.experts.tolist() as number[][],
      routing.weights.tolist() as number[][],
    );
    const pairs = switchGLU(floats, x, routing, { groupMinTokens: Number.POSITIVE_INFINITY });
    const groupedOut = switchGLU(floats, x, routing, { groupMinTokens: 1 });
    expect(pairs.shape).toEqual([T, H]);
    expect(maxAbsDiff(pairs, ref)).toBeLessThan(1e-5);
    expect(maxAbsDiff(groupedOut, ref)).toBeLessThan(1e-5);
    // Leading axes are kept: [1, T, H] in, [1, T, H] out.
    expect(switchGLU(floats, x.reshape(1, T, H), routing).shape).toEqual([1, T, H]);
  });

  test("packed 4-bit stacks: blockSparseQMM (pairs) and per-expert dequantize (grouped) equal the dequantized floats", async () => {
    const pack = async (w: mx.array): Promise<[ExpertStack, mx.array]> => {
      const [q, s, b] = await quantizeRows(w.reshape(-1, w.shape[2]!), 32, 4);
      const r = (a: mx.array) => a.reshape(E, w.shape[1]!, -1);
      const full = mx.dequantize(q, s, b, 32, 4).reshape(w.shape);
      return [{ weight: r(q), quant: { scales: r(s), biases: r(b), groupSize: 32, bits: 4 } }, full];
    };
    const [g, gf] = await pack(gate);
    const [u, uf] = await pack(up);
    const [d, df] = await pack(down);
    const packed: SwitchGLU = { numExperts: E, gate: g, up: u, down: d };
    const ref = loopReference(
      gf,
      uf,
      df,
      x,
      routing.experts.tolist() as number[][],
      routing.weights.tolist() as number[][],
    );
    expect(maxAbsDiff(switchGLU(packed, x, routing, { groupMinTokens: Number.POSITIVE_INFINITY }), ref)).toBeLessThan(
      1e-4,
    );
    expect(maxAbsDiff(switchGLU(packed, x, routing, { groupMinTokens: 1 }), ref)).toBeLessThan(1e-4);
  });

  test("softmaxTopK: softmax over all experts, the top k, renormalised only when asked", () => {
    const logits = mx.array([[1, 3, 0, 2]], mx.float32);
    const z = [1, 3, 0, 2].map(Math.exp);
    const sum = z.reduce((a, b) => a + b, 0);
    for (const norm of [true, false]) {
      const r = softmaxTopK(logits, 2, norm);
      const ids = (r.experts.tolist() as number[][])[0]!;
      const w = (r.weights.tolist() as number[][])[0]!;
      const pairs = ids.map((e, j) => [e, w[j]!] as const).sort((a, b) => a[0] - b[0]);
      expect(pairs.map((p) => p[0])).toEqual([1, 3]);
      const denom = norm ? z[1]! + z[3]! : sum;
      expect(pairs[0]![1]).toBeCloseTo(z[1]! / denom, 6);
      expect(pairs[1]![1]).toBeCloseTo(z[3]! / denom, 6);
    }
  });

  test("on CPU a bfloat16 input or stack is refused with E_DTYPE while the graph is built, before any eval", () => {
    const refuse = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return isNodeError(err) ? `${err.code}: ${err.message}` : String(err);
      }
      return "no error";
    };
    expect(refuse(() => switchGLU(floats, x.astype(mx.bfloat16), routing))).toMatch(/^E_DTYPE: .*input is .*bfloat16/);
    const bf: SwitchGLU = { ...floats, up: { weight: up.astype(mx.bfloat16) } };
    expect(refuse(() => switchGLU(bf, x, routing))).toMatch(/^E_DTYPE: .*up stack/);
  });
});

describe("qwen3_moe checkpoints", () => {
  const config = TINY_CONFIGS.qwen3_moe!;

  test("weights across several files: reference agreement, every stage reads only its files and tensors", async () => {
    const dir = join(root, "split-files");
    const { files } = await writeRandomCheckpoint(dir, { config, seed: 11, maxFileBytes: 120_000 });
    expect(files.length).toBeGreaterThan(3);
    const whole = (await loadStage(dir, 0, 4)).model;
    const mine = (logitsOf([whole], PROMPT).tolist() as number[][])[0]!;
    const ref = referenceLogits(dir, PROMPT);
    expect(Math.max(...ref.map((r, i) => Math.abs(r - mine[i]!)))).toBeLessThan(1e-4);
    const middle = await loadStage(dir, 1, 3);
    expect(middle.files.length).toBeLessThan(files.length);
    expect(middle.tensorsRead.every((n) => /^model\.layers\.[12]\./.test(n))).toBe(true);
    // Layer 1 is dense (mlp_only_layers), layer 2 sparse: the stage holds both kinds.
    expect(middle.tensorsRead).toContain("model.layers.1.mlp.gate_proj.weight");
    expect(middle.tensorsRead).toContain("model.layers.2.mlp.experts.7.down_proj.weight");
    // One ownership rule: the files download selection picks for a stage are the files the loader opens.
    const { weight_map } = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8")) as {
      weight_map: Record<string, string>;
    };
    for (const [a, b] of [
      [0, 1],
      [1, 3],
      [3, 4],
      [0, 4],
    ] as const) {
      const loaded = await loadStage(dir, a, b);
      expect(weightFilesForStage(weight_map, { layerStart: a, layerEnd: b }, 4, false)).toEqual(
        [...loaded.files].sort(),
      );
    }
  });

  test("mlx-community layout: stacked 4-bit experts with an 8-bit router, packed on CPU, equal to dequantizing them", async () => {
    const hf = join(root, "hf-float");
    const mlx = join(root, "mlx-q4");
    await writeRandomCheckpoint(hf, { config, seed: 12 });
    await writeRandomCheckpoint(mlx, {
      config,
      seed: 12,
      stackExperts: true,
      dtype: "bfloat16",
      quantize: {
        bits: 4,
        groupSize: 32,
        override: (prefix) => (/\.mlp\.gate$/.test(prefix) ? { bits: 8, groupSize: 32 } : undefined),
      },
    });
    const written = JSON.parse(readFileSync(join(mlx, "config.json"), "utf8")) as {
      quantization: Record<string, unknown>;
    };
    expect(written.quantization["model.layers.0.mlp.gate"]).toEqual({ group_size: 32, bits: 8 });
    const names = [...checkpointIndex(mlx).keys()];
    expect(names).toContain("model.layers.0.mlp.switch_mlp.gate_proj.scales");
    expect(names.some((n) => n.includes(".experts."))).toBe(false);

    const args = parseModelArgs(await readConfigFile(mlx));
    const range = { layerStart: 0, layerEnd: 4, nLayers: 4 };
    const load = async (cpuExperts: "packed" | "float32") => {
      const { weights } = await loadShardWeights(mlx, stageTensorFilter(args, range, names), {
        native: false,
        quantization: args.quantization,
        cpuExperts,
      });
      return weights;
    };
    const packedWeights = await load("packed");
    const stackW = packedWeights.get("model.layers.0.mlp.switch_mlp.up_proj.weight")!;
    expect(stackW.dtype).toBe(mx.uint32);
    expect(stackW.shape.slice(0, 2)).toEqual([8, 32]);
    expect(packedWeights.get("model.layers.0.mlp.switch_mlp.up_proj.scales")!.dtype).toBe(mx.float32);
    // Everything that is not an expert is dequantized at load, the 8-bit router included.
    expect(packedWeights.get("model.layers.0.mlp.gate.weight")!.dtype).toBe(mx.float32);
    expect(packedWeights.has("model.layers.0.mlp.gate.scales")).toBe(false);
    const floatWeights = await load("float32");
    expect(floatWeights.get("model.layers.0.mlp.switch_mlp.up_proj.weight")!.dtype).toBe(mx.float32);

    const { getArchitecture } = await import("../../src/models/index.ts");
    const arch = getArchitecture("qwen3_moe");
    const packed = arch.create(args, range, packedWeights);
    const dequantized = arch.create(args, range, floatWeights);
    const original = (await loadStage(hf, 0, 4)).model;
    const a = logitsOf([packed], PROMPT);
    expect(maxAbsDiff(a, logitsOf([dequantized], PROMPT))).toBeLessThan(1e-3);
    // Same random numbers in both layouts: 4-bit noise only, far from unrelated logits (relErr ~1.4).
    expect(relErr(a, logitsOf([original], PROMPT))).toBeLessThan(0.5);
    // Cached decode over packed experts (blockSparseQMM per pair) equals the full forward.
    const cache = createKVCache(packed.cacheSpec);
    packed.forward(mx.array([PROMPT.slice(0, 6)], mx.int32), cache);
    let step = mx.array(0);
    for (let i = 6; i < PROMPT.length; i++) step = packed.forward(mx.array([[PROMPT[i]!]], mx.int32), cache);
    expect(maxAbsDiff(step, a)).toBeLessThan(1e-3);
  });

  test("a checkpoint missing an expert is refused naming the stack and the expert", async () => {
    const dir = join(root, "missing-expert");
    await writeRandomCheckpoint(dir, { config, seed: 13 });
    const args = parseModelArgs(await readConfigFile(dir));
    const names = [...checkpointIndex(dir).keys()];
    const drop = "model.layers.0.mlp.experts.5.up_proj.weight";
    const wants = stageTensorFilter(args, { layerStart: 0, layerEnd: 1, nLayers: 4 }, names);
    const err = await loadShardWeights(dir, (n) => n !== drop && wants(n), { native: false }).catch((e: unknown) => e);
    expect(isNodeError(err) && err.code).toBe("E_WEIGHTS");
    expect((err as Error).message).toContain("model.layers.0.mlp.switch_mlp.up_proj.weight");
    expect((err as Error).message).toContain("expert(s) 5");
  });
});
