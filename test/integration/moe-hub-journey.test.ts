// A Qwen3-MoE checkpoint the way a user gets one: a Hugging Face repo (the fake hub) fetched into a cold
// cache by real `exo start` processes with real MLX runners. Two nodes each fetch only their own stage's
// weight files and answer the same as one node; a cluster too small for the experts refuses the model
// before any weight file is downloaded.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import OpenAI from "openai";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { repoFolderName } from "../../src/download/hf-cache.ts";
import { startFakeHub, type FakeHub } from "../helpers/fake-hub.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();

const ROOT = resolve(import.meta.dir, "../..");
const TOKENIZER_FROM = join(ROOT, "configs/default-model");
const REPO = "test-org/tiny-qwen3-moe";
/** The embedded model's byte-level tokenizer (vocab 263), so the random model can chat. */
const CONFIG = {
  architectures: ["Qwen3MoeForCausalLM"],
  model_type: "qwen3_moe",
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  vocab_size: 263,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 512,
  tie_word_embeddings: false,
  num_experts: 16,
  num_experts_per_tok: 4,
  moe_intermediate_size: 64,
  norm_topk_prob: true,
  decoder_sparse_step: 1,
  mlp_only_layers: [2],
  bos_token_id: 256,
  eos_token_id: 257,
  torch_dtype: "float32",
};

let work = "";
let hub: FakeHub;
let weightFiles: string[] = [];
const PROMPTS = ["count to five", "name a colour"];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "exo-moe-journey-"));
  const model = join(work, "model");
  // ~1 layer per file: stages of a split fetch different files.
  const written = await writeRandomCheckpoint(model, { config: CONFIG, seed: 21, maxFileBytes: 700_000 });
  weightFiles = written.files;
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"])
    if (existsSync(join(TOKENIZER_FROM, f))) copyFileSync(join(TOKENIZER_FROM, f), join(model, f));
  const files = readdirSync(model).map((path) => ({ path, diskPath: join(model, path) }));
  hub = await startFakeHub([{ id: REPO, files }]);
}, 120_000);

afterAll(async () => {
  await hub?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Cluster {
  nodes: SpawnedNode[];
  hfHomes: string[];
  stop(): Promise<void>;
}

/** Nodes on one peer file, each with its own fresh HF_HOME (a cold cache), linked to one another. */
async function startNodes(name: string, memoryMb: number[]): Promise<Cluster> {
  const dir = mkdtempSync(join(work, `${name}-`));
  const peersFile = join(dir, "peers.json");
  const nodes: SpawnedNode[] = [];
  const hfHomes: string[] = [];
  const writePeers = () => {
    const peers = Object.fromEntries(nodes.map((n) => [n.nodeId, { address: "127.0.0.1", port: n.port }]));
    writeFileSync(`${peersFile}.tmp`, JSON.stringify({ peers }));
    renameSync(`${peersFile}.tmp`, peersFile);
  };
  writePeers();
  for (const [i, mb] of memoryMb.entries()) {
    const hfHome = join(dir, `hf-${i}`);
    hfHomes.push(hfHome);
    const id = `${name}-${i}`;
    const args = ["--node-id", id, "--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1"];
    args.push("--api-port", "0", "--config", peersFile, "--memory-mb", String(mb));
    nodes.push(
      await spawnNode({ args, env: { HF_ENDPOINT: hub.url, HF_HOME: hfHome, HF_TOKEN: "", HF_HUB_CACHE: "" } }),
    );
    writePeers();
  }
  const ids = nodes.map((n) => n.nodeId).sort();
  for (const n of nodes)
    await waitFor(
      async () => {
        const topo = (await (await fetch(`http://127.0.0.1:${n.apiPort}/topology`)).json()) as {
          nodes: Record<string, unknown>;
        };
        return Object.keys(topo.nodes).sort().join() === ids.join();
      },
      { what: `${n.nodeId} to see ${ids.join(", ")}`, timeoutMs: 20_000 },
    );
  return {
    nodes,
    hfHomes,
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}

const client = (n: SpawnedNode) =>
  new OpenAI({ baseURL: `http://127.0.0.1:${n.apiPort}/v1`, apiKey: "unused", maxRetries: 0, timeout: 120_000 });

async function greedy(n: SpawnedNode, prompt: string): Promise<{ text: string; tokens?: number }> {
  const res = await client(n).chat.completions.create({
    model: REPO,
    messages: [{ role: "user", content: prompt }],
    max_tokens: 10,
    temperature: 0,
  });
  return { text: res.choices[0]?.message.content ?? "", tokens: res.usage?.completion_tokens };
}

/** The weight files a node's Hugging Face cache holds for the repo. */
function cachedWeights(hfHome: string): string[] {
  const snapshots = join(hfHome, "hub", repoFolderName(REPO), "snapshots");
  if (!existsSync(snapshots)) return [];
  return readdirSync(snapshots)
    .flatMap((commit) => readdirSync(join(snapshots, commit)))
    .filter((f) => f.endsWith(".safetensors"))
    .sort();
}

/** Files holding a tensor of layers [a, b) by the checkpoint's own index (plus embed / head at the ends). */
function filesOfLayers(a: number, b: number): string[] {
  const index = JSON.parse(readFileSync(join(work, "model", "model.safetensors.index.json"), "utf8")) as {
    weight_map: Record<string, string>;
  };
  const files = new Set<string>();
  for (const [name, file] of Object.entries(index.weight_map)) {
    const layer = /^model\.layers\.(\d+)\./.exec(name);
    if (layer ? Number(layer[1]) >= a && Number(layer[1]) < b : name.startsWith("model.embed") ? a === 0 : b === 4)
      files.add(file);
  }
  return [...files].sort();
}

describe("a Qwen3-MoE checkpoint from the hub", () => {
  test(
    "two nodes, each fetching only its own files into a cold cache, answer the same as one node",
    withNodeLogs(async () => {
      expect(weightFiles.length).toBeGreaterThan(3);
      const solo = await startNodes("solo", [4000]);
      const answers: { text: string; tokens?: number }[] = [];
      for (const p of PROMPTS) answers.push(await greedy(solo.nodes[0]!, p));
      expect(cachedWeights(solo.hfHomes[0]!)).toEqual([...weightFiles].sort());
      await solo.stop();
      expect(answers[0]!.tokens).toBeGreaterThan(0);

      // Equal memory: layers split 2/2 in ring order (node id ascending on ties).
      const pair = await startNodes("pair", [4000, 4000]);
      for (const [i, p] of PROMPTS.entries()) expect(await greedy(pair.nodes[1]!, p)).toEqual(answers[i]!);
      const first = cachedWeights(pair.hfHomes[0]!);
      const second = cachedWeights(pair.hfHomes[1]!);
      expect(first).toEqual(filesOfLayers(0, 2));
      expect(second).toEqual(filesOfLayers(2, 4));
      // Neither node holds the whole model: each fetched a strict subset.
      expect(first.length).toBeLessThan(weightFiles.length);
      expect(second.length).toBeLessThan(weightFiles.length);
      await pair.stop();
    }),
    300_000,
  );

  test(
    "a cluster too small for the experts refuses the model before any weight file is downloaded",
    withNodeLogs(async () => {
      const servedBefore = weightFiles.reduce((s, f) => s + hub.servedBytes(f), 0);
      // The float32 experts alone take ~2.4 MB (3 sparse layers x 16 experts); two 1 MB nodes offer 1.6 MB.
      const tiny = await startNodes("tiny", [1, 1]);
      const err = await greedy(tiny.nodes[0]!, PROMPTS[0]!).then(
        () => undefined,
        (e: unknown) => e as { status?: number; message?: string },
      );
      expect(err?.message ?? "").toContain("does not fit");
      expect(weightFiles.reduce((s, f) => s + hub.servedBytes(f), 0)).toBe(servedBefore);
      for (const h of tiny.hfHomes) expect(cachedWeights(h)).toEqual([]);
      // The node keeps serving: the models list still answers.
      const models = await client(tiny.nodes[0]!).models.list();
      expect(models.data.length).toBeGreaterThan(0);
      await tiny.stop();
    }),
    120_000,
  );
});
