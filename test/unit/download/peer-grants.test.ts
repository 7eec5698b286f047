// A node serves a peer a model's weights only while that peer is preparing the model (it said so in STATUS);
// the support files (config, tokenizer) a node reads to resolve a model are served to any peer of the cluster.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo } from "../../../src/download/download.ts";
import { peerFilesOver, servePeerFiles } from "../../../src/download/peer-files.ts";
import { createPeerGrants } from "../../../src/download/peer-grants.ts";
import { errorCode } from "../../../src/errors.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, shardedRepo } from "../../helpers/hub-fixtures.ts";
import { createMemoryNetwork } from "../../helpers/memory-transport.ts";

const REPO = "test-org/tiny-sharded";
const SHARD = "model-00002-of-00004.safetensors";
const POLICY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 };

let hub: FakeHub;
let root: string;

beforeAll(async () => {
  hub = await startFakeHub([shardedRepo(REPO, SHARDED_DIMS, SHARDED_FILES)]);
  root = await mkdtemp(join(tmpdir(), "exo-peer-grants-"));
});
afterAll(async () => {
  await hub.stop();
  await rm(root, { recursive: true, force: true });
});

const etagOf = (path: string) => {
  const f = hub.file(REPO, path);
  return f.lfs ? f.sha256 : f.gitSha1;
};

describe("peer grants", () => {
  test("weights only while the asker is preparing the model; support files and the listing always", async () => {
    const net = createMemoryNetwork();
    const a = net.add("a");
    const c = net.add("c");
    const cache = join(root, "a");
    const grants = createPeerGrants();
    servePeerFiles(a, cache, grants);
    await downloadRepo(
      { modelId: "sharded", repo: REPO },
      { hub: { endpoint: hub.url }, hubCacheDir: cache, offline: false, policy: POLICY },
    );
    const files = peerFilesOver(c);
    const shard = { etag: etagOf(SHARD), size: hub.file(REPO, SHARD).size };
    const config = { etag: etagOf("config.json"), size: hub.file(REPO, "config.json").size };

    // Not preparing anything: no weights (refused as "not here"), but what resolving the model needs.
    expect(await files.holders(REPO, shard.etag, shard.size)).toEqual([]);
    const refused = await files.read("a", REPO, shard.etag, 0, 16).then(
      () => "served",
      (err: unknown) => errorCode(err),
    );
    expect(refused).not.toBe("served");
    expect(await files.holders(REPO, config.etag, config.size)).toEqual(["a"]);
    expect((await files.listing(REPO))?.files.map((f) => f.path)).toContain(SHARD);

    // Preparing it (STATUS phase "download"; repo ids are case-insensitive): the weights are served.
    grants.preparing("c", REPO.toUpperCase(), true);
    expect(await files.holders(REPO, shard.etag, shard.size)).toEqual(["a"]);
    const bytes = await files.read("a", REPO, shard.etag, 0, 16);
    expect(bytes).toEqual((await Bun.file(hub.file(REPO, SHARD).diskPath).bytes()).slice(0, 16));
    // Another peer is not covered by c's grant.
    expect(grants.allows("b", REPO)).toBe(false);

    // Done downloading, or gone: refused again.
    grants.preparing("c", REPO, false);
    expect(await files.holders(REPO, shard.etag, shard.size)).toEqual([]);
    grants.preparing("c", REPO, true);
    grants.peerDown("c");
    expect(await files.holders(REPO, shard.etag, shard.size)).toEqual([]);
  });
});
