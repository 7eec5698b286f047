// `exo run` of a random DeepSeek-V3 checkpoint (latent attention, YaRN, grouped noaux_tc routing, a shared
// expert, a dense first layer, an MTP layer) served by the fake hub: real node processes with MLX runners,
// a fresh HF_HOME per node. Two nodes print what one node prints, and no node fetches the MTP layer's file.
// A random Kimi K2 with a tiktoken rank file for its tokenizer answers too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { core as mx } from "@frost-beta/mlx";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { writeRandomCheckpoint } from "../../src/engine/random-checkpoint.ts";
import { startFakeHub, type FakeHub, type FixtureFile } from "../helpers/fake-hub.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { KIMI_VOCAB, kimiSpecialId, kimiTokenizerFiles } from "../helpers/kimi-tokenizer.ts";
import { TINY_DEEPSEEK } from "../helpers/tiny-deepseek.ts";

useNodes();

const ROOT = resolve(import.meta.dir, "../..");
const REPO = "test-org/DeepSeek-V3-tiny";
const KIMI_REPO = "test-org/Kimi-K2-tiny";
/** The embedded model's byte-level tokenizer (263 ids) keeps the random embedding small. */
const TOKENIZER_DIR = join(ROOT, "configs/default-model");
const MTP_FILE = "model-00006-of-00006.safetensors";

let dir: string;
let hub: FakeHub;
let b: SpawnedNode | undefined;

/** The checkpoint split as a hub repo would be: one file for the ends, one per layer, the MTP layer last. */
async function deepseekRepo(): Promise<FixtureFile[]> {
  const ckpt = join(dir, "ckpt");
  const config = { ...TINY_DEEPSEEK.deepseek_v3!, vocab_size: 263, bos_token_id: 256, eos_token_id: 257 };
  await writeRandomCheckpoint(ckpt, { config, seed: 5, stackExperts: true });
  const all = mx.load(join(ckpt, "model.safetensors")) as unknown as Record<string, mx.array>;
  const fileOf = (name: string) => {
    const m = /^model\.layers\.(\d+)\./.exec(name);
    return `model-0000${m ? Number(m[1]) + 2 : 1}-of-00006.safetensors`;
  };
  const groups = new Map<string, Record<string, mx.array>>();
  for (const [name, t] of Object.entries(all)) groups.set(fileOf(name), { ...groups.get(fileOf(name)), [name]: t });
  const files: FixtureFile[] = [];
  for (const [file, tensors] of groups) {
    const path = join(ckpt, file);
    mx.saveSafetensors(path, tensors, { format: "mlx" });
    files.push({ path: file, diskPath: path });
  }
  const weightMap = Object.fromEntries(Object.keys(all).map((n) => [n, fileOf(n)]));
  const text = (path: string, body: string): FixtureFile => ({ path, bytes: new TextEncoder().encode(body) });
  files.push(text("model.safetensors.index.json", JSON.stringify({ metadata: {}, weight_map: weightMap })));
  files.push(text("config.json", readFileSync(join(ckpt, "config.json"), "utf8")));
  for (const f of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"])
    files.push(text(f, readFileSync(join(TOKENIZER_DIR, f), "utf8")));
  return files;
}

/** A random kimi_k2 checkpoint whose tokenizer is a tiktoken rank file (no tokenizer.json), as Kimi ships it. */
async function kimiRepo(): Promise<FixtureFile[]> {
  const ckpt = join(dir, "kimi");
  const config = {
    ...TINY_DEEPSEEK.kimi_k2!,
    vocab_size: KIMI_VOCAB,
    eos_token_id: kimiSpecialId("[EOS]"),
  };
  await writeRandomCheckpoint(ckpt, { config, seed: 6, stackExperts: true });
  const text = (path: string, body: string): FixtureFile => ({ path, bytes: new TextEncoder().encode(body) });
  return [
    { path: "model.safetensors", diskPath: join(ckpt, "model.safetensors") },
    text("config.json", readFileSync(join(ckpt, "config.json"), "utf8")),
    ...Object.entries(kimiTokenizerFiles()).map(([name, body]) => text(name, body)),
  ];
}

function hubEnv(): Record<string, string> {
  return {
    HF_ENDPOINT: hub.url,
    HF_HOME: mkdtempSync(join(dir, "hf-")),
    HF_TOKEN: "",
    HF_HUB_CACHE: "",
    EXO_HOME: mkdtempSync(join(dir, "home-")),
    NO_COLOR: "1",
  };
}

const nodeFlags = (id: string) =>
  ["--node-id", id, "--host", "127.0.0.1", "--port", "0", "--api-host", "127.0.0.1", "--api-port", "0"].concat(
    "--memory-mb",
    "3000",
  );

async function exoRun(extra: string[], repo = REPO): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(
    [process.execPath, "src/main.ts", "run", repo, "--prompt", "hello there", "--max-tokens", "10", ...extra],
    { cwd: ROOT, env: { ...process.env, ...hubEnv() }, stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "exo-deepseek-run-"));
  hub = await startFakeHub([
    { id: REPO, files: await deepseekRepo() },
    { id: KIMI_REPO, files: await kimiRepo() },
  ]);
}, 60_000);

afterAll(async () => {
  await b?.stop();
  await hub?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("exo run deepseek-v3 (random, fake hub)", () => {
  test(
    "answers on two nodes exactly as on one, and the MTP layer's file is never downloaded",
    withNodeLogs(async () => {
      const one = await exoRun(nodeFlags("solo"));
      if (one.code !== 0) console.error(one.stderr);
      expect(one.code).toBe(0);
      expect(one.stdout.length).toBeGreaterThan(1);

      b = await spawnNode({ args: nodeFlags("b"), env: hubEnv() });
      const peers = join(dir, "peers.json");
      writeFileSync(peers, JSON.stringify({ peers: { b: { address: "127.0.0.1", port: b.port } } }));
      const two = await exoRun([...nodeFlags("a"), "--config", peers]);
      if (two.code !== 0) console.error(two.stderr);
      expect(two.code).toBe(0);
      expect(two.stderr).toContain(`preparing ${REPO}: a ready, b ready`);
      expect(two.stdout).toBe(one.stdout);

      const fetched = new Set(hub.cdnRequests.map((r) => r.path));
      expect(fetched.has("model-00002-of-00006.safetensors")).toBe(true);
      expect(fetched.has("model-00005-of-00006.safetensors")).toBe(true);
      expect(fetched.has(MTP_FILE)).toBe(false);
    }),
    180_000,
  );

  test(
    "Kimi K2 with its tiktoken.model tokenizer (no tokenizer.json) answers through the chat template",
    withNodeLogs(async () => {
      const run = await exoRun(nodeFlags("kimi"), KIMI_REPO);
      if (run.code !== 0) console.error(run.stderr);
      expect(run.code).toBe(0);
      expect(run.stderr).not.toContain("E_TOKENIZER");
      expect(run.stdout.length).toBeGreaterThan(1);
      // Small files come straight from the hub's resolve route (not the CDN): the rank file was fetched.
      expect(hub.hubRequests.some((p) => p.startsWith(`/${KIMI_REPO}/resolve/`) && p.endsWith("/tiktoken.model"))).toBe(
        true,
      );
    }),
    120_000,
  );
});
