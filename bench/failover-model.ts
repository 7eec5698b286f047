// The model of bench/failover.ts's MLX cases: the journey checkpoint (a random 16-layer Llama, test/helpers/
// journey-model.ts) at a benchmark's size, one weight file per layer, served once by the fake hub under the catalog's
// llama-3.2-1b repo and pulled into a template HF cache; then the hub stops. Each cluster gets fresh homes, every node
// with HF_HUB_OFFLINE=1: the coordinator a holds a copy of the whole template, b and c a copy too ("cached") or
// nothing, so any file they lack comes from a peer.
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startCluster, type TestCluster } from "../test/helpers/cluster-nodes.ts";
import { startFakeHub } from "../test/helpers/fake-hub.ts";
import { JOURNEY_LAYERS, cachedFiles, journeyRepo, makeJourneyCheckpoint } from "../test/helpers/journey-model.ts";
import { runCli } from "../test/helpers/spawn-node.ts";

const CATALOG_ID = "llama-3.2-1b";
const CATALOG_REPO = "mlx-community/Llama-3.2-1B-Instruct-4bit";
/**
 * Reported memory: a small coordinator, so it keeps few layers and the survivor c takes over most of the middle
 * stage's layers when b dies (16 layers: 2/7/7, then 3/13 on a and c).
 */
const MEMORY_MB: Record<string, number> = { a: 2000, b: 8000, c: 8000 };

export interface FailoverModel {
  id: string;
  describe: string;
  /** A 3-node cluster a, b, c on fresh homes; `survivorsCached`: b and c hold the whole model too. */
  startCluster(survivorsCached: boolean, args: string[]): Promise<TestCluster>;
  /** Weight files in the HF caches of `nodes` of the cluster started last. */
  weightFiles(c: TestCluster, nodes: string[]): number;
  dispose(): void;
}

export async function failoverModel(hidden: number): Promise<FailoverModel> {
  const work = mkdtempSync(join(tmpdir(), "exo-failover-bench-"));
  const checkpoint = join(work, "unsplit");
  const dims = { hidden, layers: JOURNEY_LAYERS, heads: 8, kvHeads: 2, intermediate: 2 * hidden };
  await makeJourneyCheckpoint(checkpoint, dims);
  const perLayer = Array.from({ length: JOURNEY_LAYERS }, (_, i): [number, number] => [i, i + 1]);
  const repo = journeyRepo(CATALOG_REPO, checkpoint, perLayer);
  const bytes = repo.files.reduce((s, f) => s + (f.bytes?.length ?? 0), 0);
  const hub = await startFakeHub([repo]);
  const template = join(work, "template");
  const pull = await runCli(["pull", CATALOG_ID], {
    env: { ...homeEnv(template), HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: "" },
    timeoutMs: 120_000,
  });
  await hub.stop();
  if (pull.code !== 0) throw new Error(`exo pull failed: ${pull.stderr}`);
  let homes = new Map<string, string>();
  return {
    id: CATALOG_ID,
    describe: `random Llama ${JOURNEY_LAYERS} layers, hidden ${hidden}, ${(bytes / 2 ** 20).toFixed(0)} MiB in one file per layer`,
    async startCluster(survivorsCached, args) {
      const dir = mkdtempSync(join(work, "round-"));
      homes = new Map(["a", "b", "c"].map((id) => [id, join(dir, id)]));
      for (const [id, home] of homes) {
        mkdirSync(home, { recursive: true });
        if (id === "a" || survivorsCached)
          cpSync(join(template, "hf"), join(home, "hf"), { recursive: true, verbatimSymlinks: true });
      }
      const c = await startCluster(
        [...homes].map(([id, home]) => ({ id, memoryMb: MEMORY_MB[id], env: homeEnv(home) })),
        args,
      );
      return {
        ...c,
        stop: async () => {
          await c.stop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    weightFiles(_c, nodes) {
      const files = nodes.flatMap((id) => cachedFiles(join(homes.get(id)!, "hf", "hub"), CATALOG_REPO));
      return files.filter((f) => f.endsWith(".safetensors")).length;
    },
    dispose: () => rmSync(work, { recursive: true, force: true }),
  };
}

/** A node's environment on its own home, offline: a file it lacks can only come from a peer. */
function homeEnv(home: string): Record<string, string> {
  return {
    HF_HOME: join(home, "hf"),
    HF_HUB_CACHE: "",
    HF_TOKEN: "",
    HF_HUB_OFFLINE: "1",
    // Nothing listens there: should a node go to the hub anyway, it fails here rather than reaching out.
    HF_ENDPOINT: "http://127.0.0.1:9",
    EXO_HOME: join(home, "exo"),
    NO_COLOR: "1",
  };
}
