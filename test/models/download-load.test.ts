// A stage downloaded from the (fake) hub loads through the engine's shard-aware loader from exactly its files.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo } from "../../src/download/download.ts";
import { startFakeHub, type FakeHub } from "../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, llamaTensors, shardedRepo } from "../helpers/hub-fixtures.ts";
import { loadStage } from "../helpers/tiny-models.ts";

const REPO = "test-org/tiny-sharded";
let hub: FakeHub;
let cacheDir: string;

beforeAll(async () => {
  hub = await startFakeHub([shardedRepo(REPO, SHARDED_DIMS, SHARDED_FILES)]);
  cacheDir = await mkdtemp(join(tmpdir(), "exo-dl-load-"));
});
afterAll(async () => {
  await hub.stop();
  await rm(cacheDir, { recursive: true, force: true });
});

describe("download then load", () => {
  const stages: Array<[number, number]> = [
    [0, 2],
    [2, 4],
    [5, 6],
  ];
  for (const [a, b] of stages) {
    test(`stage [${a}, ${b}) loads its own tensors from the files it downloaded`, async () => {
      const res = await downloadRepo(
        { modelId: "m", repo: REPO, range: { layerStart: a, layerEnd: b } },
        { hub: { endpoint: hub.url }, hubCacheDir: join(cacheDir, `${a}-${b}`), offline: false },
      );
      const loaded = await loadStage(res.dir, a, b);
      const expected = new Set<string>();
      if (a === 0) Object.keys(llamaTensors(SHARDED_DIMS, "embed")).forEach((t) => expected.add(t));
      for (let i = a; i < b; i++) Object.keys(llamaTensors(SHARDED_DIMS, i)).forEach((t) => expected.add(t));
      if (b === SHARDED_DIMS.layers) Object.keys(llamaTensors(SHARDED_DIMS, "head")).forEach((t) => expected.add(t));
      expect(new Set(loaded.tensorsRead)).toEqual(expected);
      const onDisk = (await readdir(res.dir)).filter((f) => f.endsWith(".safetensors"));
      expect(loaded.files.map((f) => f.split("/").at(-1)).sort()).toEqual(onDisk.sort());
    });
  }
});
