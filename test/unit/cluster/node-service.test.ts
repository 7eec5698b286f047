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

function service(memoryMb: number, models: string[]) {
  const fetched: string[] = [];
  const store = {
    async resolveModel(ref: string): Promise<ShapedModel> {
      if (!ref.startsWith(dir)) throw new NodeError("E_MODEL_UNKNOWN", `unknown model ${ref}`);
      return { id: ref, name: ref, layers: 4, quantization: "fp32", source: { kind: "local", dir: ref } };
    },
    async ensureShardFiles(model: string | { id: string }) {
      fetched.push(typeof model === "string" ? model : model.id);
      return dir;
    },
    recordPeerProgress() {},
  };
  const transport = createMemoryNetwork().add("solo");
  return { fetched, made: createNodeClusterService({ transport, engine: createFakeEngine(), memoryOf: () => memoryMb, store, models }) };
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

  test("a local model bigger than the cluster's memory fails with E_MODEL_TOO_BIG before any file is fetched", async () => {
    const big = localModel("big", 8);
    const { made, fetched } = service(4, [big]);
    const svc = await made;
    let code = "";
    try {
      for await (const _ of svc.generate({ modelId: big, prompt: "hi", sampling: { temperature: 0, topP: 1, topK: 0 }, maxTokens: 2, stop: [] }, new AbortController().signal)) break;
    } catch (err) {
      code = errorCode(err);
      expect((err as Error).message).toContain("does not fit");
    }
    expect(code).toBe("E_MODEL_TOO_BIG");
    expect(fetched).toEqual([]);
    svc.close();
  });
});
