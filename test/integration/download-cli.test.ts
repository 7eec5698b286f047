// `exo pull`, `exo models`, `exo rm` as real processes against the fake hub (HF_ENDPOINT) and a temp HF_HOME:
// files found again by a fresh process, also offline; progress; removal.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startFakeHub, type FakeHub } from "../helpers/fake-hub.ts";
import { shardedRepo } from "../helpers/hub-fixtures.ts";

// Served under the catalog's repo for llama-3.2-1b (16 layers), tiny, 4 layers per file.
const REPO = "mlx-community/Llama-3.2-1B-Instruct-4bit";
const DIMS = { layers: 16, hidden: 32, intermediate: 64, vocab: 128, tied: true };
const MAIN = resolve(import.meta.dir, "../../src/main.ts");

let hub: FakeHub;
let hfHome: string;

async function exo(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    env: {
      ...process.env,
      HF_ENDPOINT: hub.url,
      HF_HOME: hfHome,
      HF_TOKEN: "",
      HF_HUB_CACHE: "",
      NO_COLOR: "1",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

async function modelState(id: string, env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const { stdout } = await exo(["models", "--json"], env);
  const rows = stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return rows.find((r) => r.id === id) as Record<string, unknown>;
}

beforeAll(async () => {
  hub = await startFakeHub([
    shardedRepo(REPO, DIMS, [
      [0, 4],
      [4, 8],
      [8, 12],
      [12, 16],
    ]),
  ]);
  hfHome = await mkdtemp(join(tmpdir(), "exo-cli-hf-"));
});
afterAll(async () => {
  await hub.stop();
  await rm(hfHome, { recursive: true, force: true });
});

describe("exo pull / models / rm", () => {
  test("`exo models` lists the catalog with layers, size and nothing downloaded yet", async () => {
    const { code, stdout } = await exo(["models"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ID\s+NAME\s+LAYERS\s+SIZE\s+ON THIS NODE\s+RUNS$/m);
    expect(stdout).toMatch(/^llama-3\.2-1b\s+Llama 3\.2 1B\s+16\s+~\S+ MiB\s+-\s+yes$/m);
    expect(stdout).toMatch(/^qwen-3-30b-a3b\s+Qwen 3 30B A3B\s+48\s+~\S+ GiB\s+-\s+yes$/m);
    expect(stdout).toMatch(/^llava-1\.5-7b-hf\s.*no \(llava\)$/m);
    expect(stdout).toMatch(/^exo-tiny-chat\s.*embedded\s+yes$/m);
  });

  test("`exo pull --layers` fetches one stage's files and `exo models` shows the model partly there", async () => {
    const { code, stdout, stderr } = await exo(["pull", "llama-3.2-1b", "--layers", "4:8"]);
    expect(stderr).not.toContain("ERROR");
    expect(code).toBe(0);
    expect(stdout).toContain("pulled llama-3.2-1b (mlx-community/Llama-3.2-1B-Instruct-4bit, layers 4-7 of 16)");
    expect([...new Set(hub.cdnRequests.map((r) => r.path))]).toEqual(["model-00002-of-00004.safetensors"]);
    const state = await modelState("llama-3.2-1b");
    expect(state.downloaded).toBe(false);
    expect(state.state).toMatch(/^\d+%$/);
  });

  test("`exo pull` fetches the rest, and a fresh process sees the model as downloaded", async () => {
    const { code, stderr } = await exo(["pull", "llama-3.2-1b"]);
    expect(code).toBe(0);
    expect(stderr).toContain("fetched model-00004-of-00004.safetensors");
    expect(hub.cdnRequests.filter((r) => r.path === "model-00002-of-00004.safetensors").length).toBe(1);
    expect(await modelState("llama-3.2-1b")).toMatchObject({ downloaded: true, state: "downloaded" });
  });

  test("offline (HF_HUB_OFFLINE=1) a fresh process pulls from the cache without touching the hub", async () => {
    const before = hub.hubRequests.length;
    const { code, stdout } = await exo(["pull", "llama-3.2-1b"], { HF_HUB_OFFLINE: "1" });
    expect(code).toBe(0);
    expect(stdout).toContain("pulled llama-3.2-1b");
    expect(hub.hubRequests.length).toBe(before);
  });

  test("an unknown model fails with a message naming it and a non-zero exit", async () => {
    const { code, stderr } = await exo(["pull", "llama-9000"]);
    expect(code).not.toBe(0);
    expect(stderr).toContain('unknown model "llama-9000"');
  });

  test("`exo rm` deletes the files, and says so when there is nothing left", async () => {
    const first = await exo(["rm", "llama-3.2-1b"]);
    expect(first).toMatchObject({ code: 0, stdout: "removed llama-3.2-1b\n" });
    expect(await readdir(join(hfHome, "hub"))).toEqual([]);
    const again = await exo(["rm", "llama-3.2-1b"]);
    expect(again.stdout).toBe("llama-3.2-1b has no downloaded files on this node\n");
    expect((await modelState("llama-3.2-1b")).downloaded).toBe(false);
  });
});
