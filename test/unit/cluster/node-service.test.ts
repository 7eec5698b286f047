import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createNodeClusterService } from "../../../src/cluster/node-service.ts";
import type { ShapedModel } from "../../../src/download/model-store.ts";
import { createFakeEngine } from "../../../src/engine/fake-engine.ts";
import { errorCode, NodeError } from "../../../src/errors.ts";
import { createMemoryNetwork } from "../../helpers/memory-transport.ts";

const dir = mkdtempSync(join(tmpdir(), "exo-node-service-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A local model directory whose weights take `mb` MB. */
function localModel(name: string, mb: number): string {
  const modelDir = join(dir, name);
  mkdirSync(modelDir, { recursive: true });
  writeFileSync(join(modelDir, "model.safetensors"), new Uint8Array(mb * 1024 * 1024));
  return modelDir;
}

function service(
  memoryMb: number,
  models: string[],
  opts: { quantization?: ShapedModel["quantization"]; metal?: boolean; arch?: string; expertShare?: number } = {},
) {
  const fetched: string[] = [];
  const store = {
    async resolveModel(ref: string): Promise<ShapedModel> {
      if (!ref.startsWith(dir)) throw new NodeError("E_MODEL_UNKNOWN", `unknown model ${ref}`);
      return {
        id: ref,
        name: ref,
        layers: 4,
        quantization: opts.quantization ?? "fp32",
        ...(opts.arch ? { arch: opts.arch } : {}),
        ...(opts.expertShare ? { expertShare: opts.expertShare } : {}),
        source: { kind: "local", dir: ref },
      };
    },
    async ensureShardFiles(model: string | { id: string }) {
      fetched.push(typeof model === "string" ? model : model.id);
      return dir;
    },
    recordPeerProgress() {},
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
    const ids = svc.listModels().map((m) => m.id);
    svc.close();
    expect(ids).toContain("exo-tiny-chat");
    expect(ids).toContain(small);
    expect(ids.filter((id) => id === small)).toHaveLength(1);
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
    const q4 = localModel("q4", 8);
    const cpu = service(40, [q4], { quantization: "4bit" });
    const cpuSvc = await cpu.made;
    expect(await planOutcome(cpuSvc, q4)).toBe("E_MODEL_TOO_BIG");
    expect(cpu.fetched).toEqual([]);
    cpuSvc.close();
    const metal = service(40, [q4], { quantization: "4bit", metal: true });
    const metalSvc = await metal.made;
    expect(await planOutcome(metalSvc, q4)).not.toBe("E_MODEL_TOO_BIG");
    metalSvc.close();
  });

  test("a 4-bit Mixture-of-Experts model fits a CPU node that keeps its experts packed, where a dense one does not", async () => {
    const moe = localModel("moe-q4", 8);
    const dense = service(40, [moe], { quantization: "4bit", arch: "qwen3" });
    const denseSvc = await dense.made;
    expect(await planOutcome(denseSvc, moe)).toBe("E_MODEL_TOO_BIG");
    denseSvc.close();
    const sparse = service(40, [moe], { quantization: "4bit", arch: "qwen3_moe", expertShare: 0.95 });
    const sparseSvc = await sparse.made;
    expect(await planOutcome(sparseSvc, moe)).not.toBe("E_MODEL_TOO_BIG");
    sparseSvc.close();
    // Every expert counts: the same MoE model on a node with less than its packed size does not fit.
    const small = service(8, [moe], { quantization: "4bit", arch: "qwen3_moe", expertShare: 0.95 });
    const smallSvc = await small.made;
    expect(await planOutcome(smallSvc, moe)).toBe("E_MODEL_TOO_BIG");
    expect(small.fetched).toEqual([]);
    smallSvc.close();
  });

  test("a model of an architecture this build cannot run fails with E_MODEL_UNSUPPORTED before any file is fetched", async () => {
    const ssm = localModel("mamba", 1);
    const { made, fetched } = service(1000, [ssm], { arch: "mamba" });
    const svc = await made;
    expect(await planOutcome(svc, ssm)).toBe("E_MODEL_UNSUPPORTED");
    expect(fetched).toEqual([]);
    svc.close();
  });
});
