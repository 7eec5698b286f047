import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeClusterService } from "../../../src/cluster/node-service.ts";
import { createModelStore, type NodeModelStore } from "../../../src/download/model-store.ts";
import { createFakeEngine } from "../../../src/engine/fake-engine.ts";
import { errorCode } from "../../../src/errors.ts";
import { createMemoryNetwork } from "../../helpers/memory-transport.ts";

const dir = mkdtempSync(join(tmpdir(), "exo-node-service-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A local model directory (4 layers) whose weights take `mb` MB, of architecture `arch`, stored with `bits` if given. */
function localModel(
  name: string,
  mb: number,
  opts: { bits?: number; arch?: string; extra?: Record<string, unknown> } = {},
): string {
  const modelDir = join(dir, name);
  mkdirSync(modelDir, { recursive: true });
  const config = {
    model_type: opts.arch ?? "llama",
    num_hidden_layers: 4,
    ...(opts.bits ? { quantization: { bits: opts.bits, group_size: 64 } } : {}),
    ...opts.extra,
  };
  writeFileSync(join(modelDir, "config.json"), JSON.stringify(config));
  writeFileSync(join(modelDir, "model.safetensors"), new Uint8Array(mb * 1024 * 1024));
  return modelDir;
}

/** The node's cluster service alone on a memory network, over a real model store that never reaches a hub. */
function service(memoryMb: number, models: string[], opts: { metal?: boolean } = {}) {
  const fetched: string[] = [];
  const real = createModelStore({
    nodeId: "solo",
    hub: { endpoint: "http://127.0.0.1:9" },
    hubCacheDir: join(dir, "hub"),
    offline: true,
  });
  const store: NodeModelStore = {
    ...real,
    ensureShardFiles(model, range, onProgress) {
      fetched.push(typeof model === "string" ? model : model.id);
      return real.ensureShardFiles(model, range, onProgress);
    },
  };
  const transport = createMemoryNetwork().add("solo");
  return {
    fetched,
    made: createNodeClusterService({
      transport,
      engine: createFakeEngine(),
      memoryOf: () => memoryMb,
      runsOnMetal: () => opts.metal ?? false,
      store,
      models,
    }),
  };
}

describe("the node's cluster service", () => {
  test("lists the catalog plus the models given with --models", async () => {
    const small = localModel("small", 1);
    const { made } = service(1000, [small]);
    const svc = await made;
    const ids: string[] = svc.listModels().map((m) => m.id);
    svc.close();
    expect(ids).toContain("exo-tiny-chat");
    expect(ids).toContain(small);
    expect(ids.filter((id) => id === small)).toHaveLength(1);
  });

  test("lists only models this build can run: no catalog row or served model of another architecture", async () => {
    const vision = localModel("vision-listed", 1, { arch: "llava" });
    const { made } = service(1000, [vision]);
    const svc = await made;
    const ids: string[] = svc.listModels().map((m) => m.id);
    svc.close();
    expect(ids).toContain("llama-3.2-1b");
    for (const unrunnable of ["llava-1.5-7b-hf", "stable-diffusion-2-1-base", vision])
      expect(ids).not.toContain(unrunnable);
  });

  /** The error code (or "ok") of planning `modelId` by asking for one token. */
  async function planOutcome(svc: Awaited<ReturnType<typeof service>["made"]>, modelId: string): Promise<string> {
    try {
      for await (const _ of svc.generate(
        { modelId, prompt: "hi", sampling: { temperature: 0, topP: 1, topK: 0 }, maxTokens: 1, stop: [] },
        new AbortController().signal,
      ))
        break;
      return "ok";
    } catch (err) {
      if (errorCode(err) === "E_MODEL_TOO_BIG") expect((err as Error).message).toContain("does not fit");
      return errorCode(err);
    }
  }

  test("a local model bigger than the cluster's memory fails with E_MODEL_TOO_BIG before any file is fetched", async () => {
    const big = localModel("big", 8);
    const { made, fetched } = service(4, [big]);
    const svc = await made;
    expect(await planOutcome(svc, big)).toBe("E_MODEL_TOO_BIG");
    expect(fetched).toEqual([]);
    svc.close();
  });

  test("a 4-bit model that fits as stored is too big for a CPU node, which holds it as float32, but fits on Metal", async () => {
    const q4 = localModel("q4", 8, { bits: 4 });
    const cpu = service(40, [q4]);
    const cpuSvc = await cpu.made;
    expect(await planOutcome(cpuSvc, q4)).toBe("E_MODEL_TOO_BIG");
    expect(cpu.fetched).toEqual([]);
    cpuSvc.close();
    const metal = service(40, [q4], { metal: true });
    const metalSvc = await metal.made;
    expect(await planOutcome(metalSvc, q4)).not.toBe("E_MODEL_TOO_BIG");
    metalSvc.close();
  });

  test("a 4-bit Mixture-of-Experts model fits a CPU node that keeps its experts packed, where a dense one does not", async () => {
    // Same 8 MB of 4-bit weights; the MoE config's experts are 93% of its parameters.
    const moeConfig = {
      hidden_size: 64,
      num_attention_heads: 4,
      intermediate_size: 128,
      vocab_size: 100,
      num_experts: 16,
      num_experts_per_tok: 2,
      moe_intermediate_size: 64,
    };
    const dense = localModel("dense-q4", 8, { bits: 4, arch: "qwen3" });
    const denseSvc = await service(40, [dense]).made;
    expect(await planOutcome(denseSvc, dense)).toBe("E_MODEL_TOO_BIG");
    denseSvc.close();
    const moe = localModel("moe-q4", 8, { bits: 4, arch: "qwen3_moe", extra: moeConfig });
    const sparseSvc = await service(40, [moe]).made;
    expect(await planOutcome(sparseSvc, moe)).not.toBe("E_MODEL_TOO_BIG");
    sparseSvc.close();
    // Every expert counts: on a node smaller than the packed experts it does not fit, and nothing is fetched.
    const small = service(8, [moe]);
    const smallSvc = await small.made;
    expect(await planOutcome(smallSvc, moe)).toBe("E_MODEL_TOO_BIG");
    expect(small.fetched).toEqual([]);
    smallSvc.close();
  });

  test("a model of an architecture this build cannot run fails with E_MODEL_UNSUPPORTED before any file is fetched", async () => {
    const ssm = localModel("ssm", 1, { arch: "mamba" });
    const { made, fetched } = service(1000, [ssm]);
    const svc = await made;
    expect(await planOutcome(svc, ssm)).toBe("E_MODEL_UNSUPPORTED");
    expect(fetched).toEqual([]);
    svc.close();
  });
});
