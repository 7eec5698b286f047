// The embedded catalog: exo's model ids, repo lookup, validation errors, and model references.
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findModel, loadCatalog, parseCatalog, DEFAULT_MODEL_ID } from "../../../src/catalog/catalog.ts";
import { embeddedModelDir } from "../../../src/catalog/embedded.ts";
import { parseQuantization } from "../../../src/catalog/quantization.ts";
import { bitsPerWeight } from "../../../src/models/spec/quantization.ts";
import { resolveModelRef } from "../../../src/catalog/resolve.ts";

describe("the embedded catalog", () => {
  const catalog = loadCatalog();
  const hubEntries = catalog.entries.filter((e) => !e.embedded);

  test("holds exo's 73 MLX model ids, the Qwen3 family, DeepSeek V3.1, Kimi K2 and the embedded default model", () => {
    expect(hubEntries.length).toBe(87);
    expect(findModel(catalog, DEFAULT_MODEL_ID)?.embedded).toBe(true);
  });

  test("has exo's layer counts by value (exo-legacy §1, without the dummy engine's 8), and the Qwen3 family's", () => {
    const histogram: Record<number, number> = {};
    for (const e of hubEntries) histogram[e.layers] = (histogram[e.layers] ?? 0) + 1;
    expect(histogram).toEqual({
      16: 2,
      27: 1,
      28: 21,
      31: 1,
      32: 9,
      36: 4,
      40: 3,
      42: 1,
      46: 1,
      48: 11,
      60: 1,
      61: 7,
      64: 8,
      80: 12,
      88: 1,
      94: 2,
      126: 2,
    });
  });

  test("lists DeepSeek V3.1 and Kimi K2 Instruct as mlx-community ships them (61 layers in their config.json)", () => {
    expect(findModel(catalog, "deepseek-v3.1")).toMatchObject({
      repo: "mlx-community/DeepSeek-V3.1-4bit",
      layers: 61,
      arch: "deepseek_v3",
    });
    expect(findModel(catalog, "deepseek-v3.1-8bit")).toMatchObject({ layers: 61, quantization: "8bit" });
    expect(findModel(catalog, "kimi-k2-instruct")).toMatchObject({
      repo: "mlx-community/Kimi-K2-Instruct-4bit",
      layers: 61,
      arch: "kimi_k2",
    });
    for (const id of [
      "deepseek-v3",
      "deepseek-r1",
      "deepseek-coder-v2-lite",
      "deepseek-coder-v2.5",
      "kimi-k2-instruct",
    ])
      expect(`${id}:${findModel(catalog, id)?.runnable}`).toBe(`${id}:true`);
  });

  test("states for every row whether this build runs it: the Qwen3 family dense and MoE does, LLaVA does not", () => {
    for (const id of ["qwen-3-0.6b", "qwen-3-32b", "qwen-3-30b-a3b", "qwen-3-235b-a22b-2507", "qwen-3-coder-30b"])
      expect(`${id}:${findModel(catalog, id)?.runnable}`).toBe(`${id}:true`);
    expect(findModel(catalog, "qwen-3-30b-a3b")).toMatchObject({ arch: "qwen3_moe", layers: 48 });
    expect(findModel(catalog, "qwen-3-235b-a22b-2507")).toMatchObject({
      repo: "mlx-community/Qwen3-235B-A22B-Instruct-2507-4bit",
      layers: 94,
    });
    expect(findModel(catalog, "llava-1.5-7b-hf")).toMatchObject({ arch: "llava", runnable: false });
  });

  test("maps well-known ids to their MLX repos and architectures", () => {
    expect(findModel(catalog, "llama-3.1-405b")).toMatchObject({
      repo: "mlx-community/Meta-Llama-3.1-405B-4bit",
      layers: 126,
      arch: "llama",
    });
    expect(findModel(catalog, "qwen-2.5-0.5b")).toMatchObject({
      repo: "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
      layers: 28,
      arch: "qwen2",
    });
    expect(findModel(catalog, "deepseek-r1-distill-qwen-32b-8bit")?.repo).toBe(
      "mlx-community/DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit",
    );
  });

  test("stores the quantization that the repo name implies, and a size that follows from it", () => {
    for (const e of hubEntries) expect(`${e.id}:${e.quantization}`).toBe(`${e.id}:${parseQuantization(e.repo ?? "")}`);
    const q4 = findModel(catalog, "llama-3.1-8b")!;
    const q8 = findModel(catalog, "llama-3.2-1b-8bit")!;
    const b16 = findModel(catalog, "llama-3.2-3b-bf16")!;
    expect([q4.quantization, q8.quantization, b16.quantization]).toEqual(["4bit", "8bit", "bf16"]);
    expect(findModel(catalog, "llama-3.2-3b")!.sizeBytes).toBeLessThan(b16.sizeBytes / 3);
  });

  test("describes the embedded model with the layer count and architecture of its shipped config.json", async () => {
    const config = (await Bun.file(join(embeddedModelDir(), "config.json")).json()) as {
      num_hidden_layers: number;
      model_type: string;
    };
    expect(findModel(catalog, DEFAULT_MODEL_ID)).toMatchObject({
      layers: config.num_hidden_layers,
      arch: config.model_type,
    });
  });

  test("finds a model by its Hugging Face repo id, ignoring case", () => {
    expect(findModel(catalog, "mlx-community/llama-3.2-1b-instruct-4bit")?.id).toBe("llama-3.2-1b");
    expect(findModel(catalog, "nobody/nothing")).toBeUndefined();
  });
});

describe("parseQuantization", () => {
  const cases: Array<[string, string]> = [
    ["mlx-community/Llama-3.2-1B-Instruct-4bit", "4bit"],
    ["mlx-community/DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit", "8bit"],
    ["mlx-community/nvidia_Llama-3.1-Nemotron-70B-Instruct-HF_4bit", "4bit"],
    ["mlx-community/DeepSeek-V2.5-MLX-AQ4_1_64", "4bit"],
    ["mlx-community/DeepSeek-Coder-V2-Lite-Instruct-4bit-mlx", "4bit"],
    ["mlx-community/DeepSeek-V3-3bit", "3bit"],
    ["mlx-community/Meta-Llama-3.1-70B-Instruct-bf16-CORRECTED", "bf16"],
    ["someone/model-fp16", "fp16"],
    ["mlx-community/Llama-3.2-3B-Instruct", "bf16"],
  ];
  for (const [repo, q] of cases)
    test(`reads ${q} from ${repo}`, () => expect(parseQuantization(repo)).toBe(q as never));

  test("counts the group scale and bias in bits per weight", () => {
    expect(bitsPerWeight("4bit")).toBe(4.5);
    expect(bitsPerWeight("bf16")).toBe(16);
  });
});

describe("parseCatalog", () => {
  test("names the entry and key of a bad value", () => {
    const data = {
      models: [{ id: "a", name: "A", repo: "o/a", layers: 0, arch: "llama", quantization: "4bit", size_bytes: 1 }],
    };
    expect(() => parseCatalog(data, "x.yaml")).toThrow("x.yaml: models[0].layers: expected a positive integer, got 0");
  });

  test("rejects a duplicate id", () => {
    const one = { id: "a", name: "A", repo: "o/a", layers: 2, arch: "llama", quantization: "4bit", size_bytes: 1 };
    expect(() => parseCatalog({ models: [one, one] })).toThrow("duplicate id");
  });

  test("rejects a repo that is not org/name", () => {
    const bad = { id: "a", name: "A", repo: "../etc", layers: 2, arch: "llama", quantization: "4bit", size_bytes: 1 };
    expect(() => parseCatalog({ models: [bad] })).toThrow("models[0].repo");
  });
});

describe("resolveModelRef", () => {
  test("resolves a catalog id to its hub repo", async () => {
    const m = await resolveModelRef("llama-3.2-1b");
    expect(m.source).toEqual({ kind: "hub", repo: "mlx-community/Llama-3.2-1B-Instruct-4bit" });
    expect(m.layers).toBe(16);
  });

  test("resolves the default model to the embedded directory", async () => {
    const m = await resolveModelRef(DEFAULT_MODEL_ID);
    expect(m.source).toEqual({ kind: "local", dir: embeddedModelDir() });
  });

  test("resolves an unknown repo id to the hub with its layers still unknown", async () => {
    const m = await resolveModelRef("some-org/Some-Model-8bit");
    expect(m).toMatchObject({
      id: "some-org/Some-Model-8bit",
      quantization: "8bit",
      source: { kind: "hub", repo: "some-org/Some-Model-8bit" },
    });
    expect(m.layers).toBeUndefined();
  });

  test("reads layers and architecture of a local directory the operator serves (allowLocal) from its config.json", async () => {
    const dir = await mkdtemp(join(tmpdir(), "exo-catalog-"));
    try {
      await writeFile(
        join(dir, "config.json"),
        JSON.stringify({ model_type: "qwen2", num_hidden_layers: 6, quantization: { bits: 4, group_size: 64 } }),
      );
      const m = await resolveModelRef(dir, undefined, { allowLocal: true });
      expect(m).toMatchObject({
        id: dir,
        layers: 6,
        arch: "qwen2",
        quantization: "4bit",
        source: { kind: "local", dir },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("refuses a local path by default with the same message whether or not it exists (no file-existence hints)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "exo-catalog-"));
    try {
      await writeFile(join(dir, "config.json"), JSON.stringify({ model_type: "llama", num_hidden_layers: 2 }));
      const existing = (await resolveModelRef(dir).catch((e: unknown) => e)) as Error;
      const missing = (await resolveModelRef(join(dir, "nothing-here")).catch((e: unknown) => e)) as Error;
      expect(existing).toMatchObject({ code: "E_MODEL_UNKNOWN" });
      expect(missing).toMatchObject({ code: "E_MODEL_UNKNOWN" });
      expect(existing.message.replace(dir, "P")).toBe(missing.message.replace(join(dir, "nothing-here"), "P"));
      expect(existing.message).toContain("not a model this node serves");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("fails on an unknown name with E_MODEL_UNKNOWN naming it", async () => {
    const err = await resolveModelRef("llama-9000").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "E_MODEL_UNKNOWN" });
    expect((err as Error).message).toContain('"llama-9000"');
  });
});
