// Cluster services on an in-memory network with fake engines and a letter tokenizer, for unit tests.
import { asModelId, asNodeId } from "../../src/ids.ts";
import { NodeError } from "../../src/errors.ts";
import type { GenerateRequest, GenerationEvent, ModelInfo } from "../../src/cluster/types.ts";
import { createFakeEngine, type FakeEngineOptions } from "../../src/engine/fake-engine.ts";
import type { ShardEngine } from "../../src/engine/types.ts";
import type { Plan, StatusFields } from "../../src/cluster/messages.ts";
import type { AdmissionOptions } from "../../src/cluster/admission-queue.ts";
import { createClusterService, type ClusterService, type ClusterTokenizer } from "../../src/cluster/service.ts";
import { createMemoryNetwork, type MemoryNetwork } from "./memory-transport.ts";
import { waitFor } from "./wait.ts";

export const MODEL: ModelInfo = { id: asModelId("fake-6"), name: "Fake 6 layers", layers: 6, repo: "test/fake-6" };
export const EOS = 255;

/** Token id → one letter; EOS (255) decodes to nothing, like a special token. */
export function letterTokenizer(contextWindow?: number): ClusterTokenizer {
  const encode = (text: string) => [...text].map((c) => c.charCodeAt(0) % 200);
  return {
    ...(contextWindow !== undefined ? { contextWindow } : {}),
    encode,
    encodeChat: (messages) => encode(messages.map((m) => `${m.role}:${m.content}`).join("\n")),
    eosIds: [EOS],
    createDetokenizer: () => ({
      push: (id) => (id === EOS ? "" : String.fromCharCode(97 + (id % 26))),
      flush: () => "",
    }),
  };
}

export interface MemoryCluster {
  net: MemoryNetwork;
  services: Map<string, ClusterService>;
  engines: Map<string, ShardEngine>;
  plan: Plan;
  /** Files fetched per node: "node:layerStart-layerEnd". */
  fetched: string[];
  /** STATUS messages each node heard. */
  statuses: Map<string, StatusFields[]>;
  close(): void;
}

/** `layers` gives each node's layer count, in plan order; their sum is the model's layer count. */
export function createMemoryCluster(
  layers: Record<string, number>,
  opts: {
    engine?: FakeEngineOptions;
    wrapEngine?: (id: string, e: ShardEngine) => ShardEngine;
    tokenTimeoutMs?: number;
    /** The tokenizer's context window (prompt + answer tokens); none by default. */
    contextWindow?: number;
    /** Every service's admission (limit, queue size, wait). */
    admission?: Partial<AdmissionOptions>;
  } = {},
): MemoryCluster {
  const net = createMemoryNetwork();
  const ids = Object.keys(layers);
  let start = 0;
  const stages = ids.map((nodeId) => {
    const s = { nodeId: asNodeId(nodeId), layerStart: start, layerEnd: start + layers[nodeId]! };
    start = s.layerEnd;
    return s;
  });
  const model = { ...MODEL, layers: start };
  const plan: Plan = { modelId: model.id, nLayers: start, stages };
  const services = new Map<string, ClusterService>();
  const engines = new Map<string, ShardEngine>();
  const fetched: string[] = [];
  const statuses = new Map<string, StatusFields[]>();
  for (const id of ids) {
    const heard: StatusFields[] = [];
    statuses.set(id, heard);
    const transport = net.add(id);
    const engine = (opts.wrapEngine ?? ((_, e) => e))(id, createFakeEngine({ eosToken: EOS, ...opts.engine }));
    engines.set(id, engine);
    const service = createClusterService({
      transport,
      engine,
      models: {
        listModels: () => [model],
        resolveModel: async (modelId) => {
          if (modelId !== model.id) throw new NodeError("E_MODEL_UNKNOWN", `unknown model ${modelId}`);
          return model;
        },
        planFor: () => plan,
        ensureShardFiles: async (_m, range, onProgress) => {
          fetched.push(`${id}:${range.layerStart}-${range.layerEnd}`);
          onProgress(0.5, "1/2 files", { status: "in_progress", node: id });
          return `/fake/${id}`;
        },
      },
      loadTokenizer: async () => letterTokenizer(opts.contextWindow),
      onStatus: (status) => heard.push(status),
      tokenTimeoutMs: opts.tokenTimeoutMs,
      ...(opts.admission ? { admission: opts.admission } : {}),
    });
    services.set(id, service);
  }
  return { net, services, engines, plan, fetched, statuses, close: () => services.forEach((s) => s.close()) };
}

export function request(overrides: Partial<GenerateRequest> = {}): GenerateRequest {
  return {
    modelId: MODEL.id,
    prompt: "count",
    sampling: { temperature: 0, topP: 1, topK: 0 },
    maxTokens: 12,
    stop: [],
    ...overrides,
  };
}

/** Text and the final event of one generation. */
export async function collect(
  events: AsyncIterable<GenerationEvent>,
): Promise<{ text: string; done: Extract<GenerationEvent, { kind: "done" }> }> {
  let text = "";
  for await (const e of events) {
    if (e.kind === "text") text += e.text;
    else return { text, done: e };
  }
  throw new Error("the stream ended without a done event");
}

/** Wait until no node holds any state of any request (coordinator, stages, engines). */
export async function waitAllFree(
  cluster: MemoryCluster,
  nodes = [...cluster.services.keys()],
  timeoutMs = 1000,
): Promise<void> {
  await waitFor(
    async () => {
      for (const id of nodes) {
        const s = cluster.services.get(id)!;
        const live = await s.liveRequests();
        if (live.queued + live.coordinating + live.stages + live.engine > 0) return false;
      }
      return true;
    },
    { timeoutMs, what: "every node to hold zero request state" },
  );
}
