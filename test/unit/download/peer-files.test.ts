// Model files from peers: a node asks the cluster for each blob (by content hash) before the hub, verifies what
// peers send, resumes from another peer or the hub after a drop, and gets a whole stage from peers when offline.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo, type DownloadOptions } from "../../../src/download/download.ts";
import { repoCache } from "../../../src/download/hf-cache.ts";
import { peerFilesOver, servePeerFiles, type PeerFiles } from "../../../src/download/peer-files.ts";
import { GRANT_ALL } from "../../../src/download/peer-grants.ts";
import { describeProgress, toExoProgress, type DownloadProgress } from "../../../src/download/progress.ts";
import { errorCode } from "../../../src/errors.ts";
import { startFakeHub, type FakeHub } from "../../helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, shardedRepo } from "../../helpers/hub-fixtures.ts";
import { createMemoryNetwork } from "../../helpers/memory-transport.ts";

const REPO = "test-org/tiny-sharded";
const POLICY = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5, stallTimeoutMs: 5_000 };
const SHARD = "model-00002-of-00004.safetensors";

let hub: FakeHub;
let root: string;
let n = 0;
const freshCache = () => join(root, `cache-${n++}`);
const opts = (hubCacheDir: string, extra: Partial<DownloadOptions> = {}): DownloadOptions => ({
  hub: { endpoint: hub.url },
  hubCacheDir,
  offline: false,
  policy: POLICY,
  ...extra,
});
const whole = { modelId: "sharded", repo: REPO };
const hubFile = (path: string) => Bun.file(hub.file(REPO, path).diskPath).bytes();
const etagOf = (path: string) =>
  hub.file(REPO, path).lfs ? hub.file(REPO, path).sha256 : hub.file(REPO, path).gitSha1;
const hubBytes = () => hub.cdnRequests.reduce((sum, r) => sum + r.bytesSent, 0);

/** Content hashes of the weight files of the test repo. */
const SHARDED_FILES_ETAGS = () =>
  SHARDED_FILES.map((_, i) =>
    etagOf(`model-${String(i + 1).padStart(5, "0")}-of-0000${SHARDED_FILES.length}.safetensors`),
  );

/** Reads of one PeerFiles, recorded, with faults per peer: a drop at an offset, or a byte flipped. */
function instrumented(inner: PeerFiles, faults: { dropAt?: Record<string, number>; corrupt?: Set<string> } = {}) {
  const asked: { peer: string; etag: string; offset: number; length: number; done: boolean }[] = [];
  const files: PeerFiles = {
    chunkBytes: 1024,
    window: 4,
    holders: (repo, etag, size) => inner.holders(repo, etag, size),
    listing: (repo) => inner.listing(repo),
    async read(peer, repo, etag, offset, length) {
      const drop = faults.dropAt?.[peer];
      if (drop !== undefined && offset + length > drop) throw new Error(`${peer} dropped the link`);
      // Recorded in the order asked (reads are pipelined, so they may complete out of order), once they succeed.
      const read = { peer, etag, offset, length, done: false };
      asked.push(read);
      const bytes = await inner.read(peer, repo, etag, offset, length);
      read.done = true;
      if (!faults.corrupt?.has(peer)) return bytes;
      const bad = bytes.slice();
      bad[0] = (bad[0] ?? 0) ^ 0xff;
      return bad;
    },
  };
  return {
    files,
    get reads() {
      return asked.filter((r) => r.done);
    },
  };
}

/** A memory cluster where each node serves its own cache; `seeded` nodes first download the whole model from the hub. */
async function cluster(ids: string[], seeded: string[]) {
  const net = createMemoryNetwork();
  const nodes = new Map(ids.map((id) => [id, { transport: net.add(id), cache: freshCache() }]));
  for (const node of nodes.values()) servePeerFiles(node.transport, node.cache, GRANT_ALL);
  for (const id of seeded) await downloadRepo(whole, opts(nodes.get(id)!.cache));
  return { net, node: (id: string) => nodes.get(id)! };
}

async function sameFiles(a: string, b: string): Promise<void> {
  const names = (await readdir(a)).sort();
  expect((await readdir(b)).sort()).toEqual(names);
  for (const f of names) expect(await Bun.file(join(b, f)).bytes()).toEqual(await Bun.file(join(a, f)).bytes());
}

beforeAll(async () => {
  hub = await startFakeHub([shardedRepo(REPO, SHARDED_DIMS, SHARDED_FILES)]);
  root = await mkdtemp(join(tmpdir(), "exo-peer-files-"));
});
afterAll(async () => {
  await hub.stop();
  await rm(root, { recursive: true, force: true });
});

describe("peer file fetching", () => {
  test("a node whose peer holds the model takes every file from it: the hub sends no byte", async () => {
    const c = await cluster(["a", "b"], ["a"]);
    const before = hubBytes();
    const b = c.node("b");
    const res = await downloadRepo(whole, opts(b.cache, { peers: peerFilesOver(b.transport) }));
    expect(hubBytes()).toBe(before);
    await sameFiles(repoCache(c.node("a").cache, REPO).snapshotDir(res.commit), res.dir);
  });

  test("three nodes starting cold at once: the hub serves each file once, the others stream it as it arrives", async () => {
    const c = await cluster(["a", "b", "c"], []);
    const before = hub.cdnRequests.length;
    const beforeApi = hub.hubRequests.filter((p) => p.includes("/resolve/")).length;
    const results = await Promise.all(
      ["a", "b", "c"].map((id) => {
        const node = c.node(id);
        return downloadRepo(whole, opts(node.cache, { peers: peerFilesOver(node.transport) }));
      }),
    );
    const served = new Map<string, number>();
    for (const r of hub.cdnRequests.slice(before)) served.set(r.path, (served.get(r.path) ?? 0) + r.bytesSent);
    // LFS weight files: exactly their size in CDN bytes, once for the cluster.
    for (const f of results[0]!.files.filter((p) => p.endsWith(".safetensors")))
      expect(served.get(f)).toBe(hub.file(REPO, f).size);
    // Support files (served by resolve, not the CDN) are fetched once for the cluster too.
    const resolves = hub.hubRequests.filter((p) => p.includes("/resolve/")).length - beforeApi;
    expect(resolves).toBe(results[0]!.files.length);
    for (const r of results.slice(1)) await sameFiles(results[0]!.dir, r.dir);
  });

  test("HF_HUB_OFFLINE with an empty cache: the stage comes from peers, in the HF cache layout", async () => {
    const c = await cluster(["a", "b"], ["a"]);
    const b = c.node("b");
    const res = await downloadRepo(
      { ...whole, range: { layerStart: 2, layerEnd: 4 } },
      opts(b.cache, { offline: true, peers: peerFilesOver(b.transport) }),
    );
    expect(res.offline).toBe(true);
    expect(res.commit).toBe(hub.commit(REPO));
    expect(await repoCache(b.cache, REPO).readRef("main")).toBe(res.commit);
    expect(res.files).toContain(SHARD);
    expect(await Bun.file(join(res.dir, SHARD)).bytes()).toEqual(await hubFile(SHARD));
  });

  test("a hub that cannot be reached: the stage comes from peers", async () => {
    const c = await cluster(["a", "b"], ["a"]);
    const b = c.node("b");
    const res = await downloadRepo(
      whole,
      opts(b.cache, { hub: { endpoint: "http://127.0.0.1:9" }, peers: peerFilesOver(b.transport) }),
    );
    expect(res.offline).toBe(true);
    await sameFiles(repoCache(c.node("a").cache, REPO).snapshotDir(res.commit), res.dir);
  });

  test("offline with no peer holding the model: E_DOWNLOAD_OFFLINE", async () => {
    const c = await cluster(["a", "b"], []);
    const b = c.node("b");
    const err = await downloadRepo(whole, opts(b.cache, { offline: true, peers: peerFilesOver(b.transport) })).catch(
      (e: unknown) => e,
    );
    expect(errorCode(err)).toBe("E_DOWNLOAD_OFFLINE");
  });

  test("a peer that lacks a blob answers 'not here' at once", async () => {
    const c = await cluster(["a", "b"], []);
    const etag = etagOf(SHARD);
    const started = performance.now();
    const err = await c
      .node("b")
      .transport.request("a", "BLOB_HAVE", { repo: REPO, etag })
      .catch((e: unknown) => e);
    expect(errorCode(err)).toBe("E_DOWNLOAD_NOT_FOUND");
    expect((err as Error).message).toContain("not here");
    expect(performance.now() - started).toBeLessThan(5_000); // no deadline waited out
    expect(await peerFilesOver(c.node("b").transport).holders(REPO, etag, hub.file(REPO, SHARD).size)).toEqual([]);
  });

  test("names from the wire never become paths: bad repo, etag or range are refused", async () => {
    const c = await cluster(["a", "b"], ["a"]);
    const b = c.node("b").transport;
    const etag = etagOf(SHARD);
    const bad = [
      { repo: "../../etc", etag },
      { repo: "test-org/..", etag },
      { repo: REPO, etag: "../../../etc/passwd" },
      { repo: REPO, etag: `${etag}.incomplete` },
    ];
    for (const fields of bad) {
      const err = await b.request("a", "BLOB_READ", { ...fields, offset: 0, length: 1 }).catch((e: unknown) => e);
      expect(errorCode(err)).toBe("E_INVALID_REQUEST");
    }
    const tooLong = await b
      .request("a", "BLOB_READ", { repo: REPO, etag, offset: 0, length: 64 * 1024 * 1024 })
      .catch((e: unknown) => e);
    expect(errorCode(tooLong)).toBe("E_INVALID_REQUEST");
  });

  test("a peer listing with a path outside the snapshot is ignored", async () => {
    const net = createMemoryNetwork();
    const evil = net.add("evil");
    const b = net.add("b");
    const file = { etag: etagOf("config.json"), size: hub.file(REPO, "config.json").size };
    evil.handle("REPO_FILES", () => ({
      type: "OK",
      fields: {
        commit: hub.commit(REPO),
        files: [
          { path: "../../../escaped.json", etag: file.etag, size: file.size },
          { path: "sub/dir.json", etag: file.etag, size: file.size },
        ],
      },
    }));
    const listed = await peerFilesOver(b).listing(REPO);
    expect(listed?.files).toEqual([]);
  });

  test("a peer that drops midway: the next peer continues at the same offset, no byte fetched twice", async () => {
    const c = await cluster(["a", "b", "c"], ["a", "b"]);
    const size = hub.file(REPO, SHARD).size;
    const cut = Math.floor(size / 1024 / 2) * 1024;
    const t = instrumented(peerFilesOver(c.node("c").transport), { dropAt: { a: cut } });
    const before = hubBytes();
    const res = await downloadRepo(whole, opts(c.node("c").cache, { peers: t.files }));
    expect(hubBytes()).toBe(before);
    expect(await Bun.file(join(res.dir, SHARD)).bytes()).toEqual(await hubFile(SHARD));
    const shardReads = t.reads.filter((r) => r.etag === etagOf(SHARD));
    // a sent [0, cut), b the rest from exactly there: each byte once.
    const sum = (peer: string) => shardReads.filter((r) => r.peer === peer).reduce((s, r) => s + r.length, 0);
    expect(sum("a")).toBe(cut);
    expect(sum("b")).toBe(size - cut);
    expect(shardReads.find((r) => r.peer === "b")?.offset).toBe(cut);
    // Across every file, each byte was read exactly once.
    const total = t.reads.reduce((s, r) => s + r.length, 0);
    const files = (await readdir(res.dir)).map((f) => Bun.file(join(res.dir, f)).size);
    expect(total).toBe(files.reduce((s, x) => s + x, 0));
  });

  test("the only peer drops midway: the hub serves the rest from that offset", async () => {
    const c = await cluster(["a", "c"], ["a"]);
    const size = hub.file(REPO, SHARD).size;
    const cut = Math.floor(size / 1024 / 2) * 1024;
    const t = instrumented(peerFilesOver(c.node("c").transport), { dropAt: { a: cut } });
    const before = hub.cdnRequests.length;
    const res = await downloadRepo(whole, opts(c.node("c").cache, { peers: t.files }));
    expect(await Bun.file(join(res.dir, SHARD)).bytes()).toEqual(await hubFile(SHARD));
    const fromHub = hub.cdnRequests.slice(before);
    // Every file larger than the cut came partly from the hub, starting exactly where the peer stopped.
    expect(fromHub.length).toBeGreaterThan(0);
    for (const r of fromHub) {
      expect(r.rangeStart).toBe(cut);
      expect(r.bytesSent).toBe(hub.file(REPO, r.path).size - cut);
    }
  });

  test("progress shows where the bytes came from: the peer up to its drop, the hub for the rest", async () => {
    const c = await cluster(["a", "c"], ["a"]);
    const cut = Math.floor(hub.file(REPO, SHARD).size / 1024 / 2) * 1024;
    const t = instrumented(peerFilesOver(c.node("c").transport), { dropAt: { a: cut } });
    const before = hubBytes();
    let last: DownloadProgress | undefined;
    const res = await downloadRepo(whole, opts(c.node("c").cache, { peers: t.files }), (p) => {
      last = p;
    });
    // Sources count this session's bytes of the stage's files (the support files, read first, count as cached).
    const weights = new Set(SHARDED_FILES_ETAGS());
    const fromPeer = t.reads.filter((r) => weights.has(r.etag)).reduce((s, r) => s + r.length, 0);
    const fromHub = hubBytes() - before;
    expect(fromPeer).toBeGreaterThan(0);
    expect(fromHub).toBeGreaterThan(0);
    expect(last?.sources).toEqual({ a: fromPeer, hub: fromHub });
    expect(fromPeer + fromHub).toBe(last?.sessionBytes ?? -1);
    const shard = last?.files.find((f) => f.path === SHARD);
    expect(shard?.sources.a).toBe(cut);
    expect((shard?.sources.a ?? 0) + (shard?.sources.hub ?? 0)).toBe(hub.file(REPO, SHARD).size);
    const exo = toExoProgress(last as DownloadProgress);
    expect(exo.sources).toEqual({ a: fromPeer, hub: fromHub });
    expect((exo.file_progress as Record<string, { sources: unknown }>)[SHARD]?.sources).toEqual(shard?.sources);
    expect(describeProgress(last as DownloadProgress)).toMatch(/from (peer a .*, hub|hub .*, peer a)/);
    expect(res.files.length).toBeGreaterThan(0);
  });

  test("a peer serving a corrupt byte is caught, dropped for that file, and the file refetched elsewhere", async () => {
    const c = await cluster(["a", "b", "c"], ["a", "b"]);
    const t = instrumented(peerFilesOver(c.node("c").transport), { corrupt: new Set(["a"]) });
    const res = await downloadRepo(whole, opts(c.node("c").cache, { peers: t.files }));
    for (const f of await readdir(res.dir)) expect(await Bun.file(join(res.dir, f)).bytes()).toEqual(await hubFile(f));
    // The shard was first taken (corrupt) from a, then wholly from b; a was never asked again for it.
    const shardReads = t.reads.filter((r) => r.etag === etagOf(SHARD));
    const size = hub.file(REPO, SHARD).size;
    const firstB = shardReads.findIndex((r) => r.peer === "b");
    expect(shardReads.slice(0, firstB).every((r) => r.peer === "a")).toBe(true);
    expect(shardReads.slice(0, firstB).reduce((s, r) => s + r.length, 0)).toBe(size);
    expect(shardReads.slice(firstB).every((r) => r.peer === "b")).toBe(true);
    expect(shardReads.slice(firstB).reduce((s, r) => s + r.length, 0)).toBe(size);
  });

  test("the hub drops mid-file while a peer finished it meanwhile: the rest comes from the peer", async () => {
    const c = await cluster(["a", "c"], ["a"]);
    const size = hub.file(REPO, SHARD).size;
    const cut = 2048;
    const before = hub.cdnRequests.length;
    hub.faults.dropAt = new Map([[SHARD, [cut]]]);
    const inner = peerFilesOver(c.node("c").transport);
    let asked = 0;
    // The first time c asks for the shard nobody has it; after the hub's drop, a does.
    const t = instrumented({
      ...inner,
      holders: async (repo, etag, sz) => (etag === etagOf(SHARD) && asked++ === 0 ? [] : inner.holders(repo, etag, sz)),
    });
    try {
      const res = await downloadRepo(whole, opts(c.node("c").cache, { peers: t.files }));
      expect(await Bun.file(join(res.dir, SHARD)).bytes()).toEqual(await hubFile(SHARD));
      const shardFromPeer = t.reads.filter((r) => r.etag === etagOf(SHARD));
      // The peer continued where the hub's bytes on disk ended (at most the cut), without a gap or overlap.
      const resumedAt = shardFromPeer[0]?.offset ?? -1;
      expect(resumedAt).toBeGreaterThanOrEqual(0);
      expect(resumedAt).toBeLessThanOrEqual(cut);
      expect(hub.cdnRequests.slice(before).filter((r) => r.path === SHARD).length).toBe(1);
      let next = resumedAt;
      for (const r of shardFromPeer) {
        expect(r.offset).toBe(next);
        next += r.length;
      }
      expect(next).toBe(size);
    } finally {
      hub.faults.dropAt = undefined;
    }
  });
});
