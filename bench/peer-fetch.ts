// Model files from a peer vs from the hub vs raw TCP, side by side in one run (alternating rounds, medians):
// one file of SIZE MiB fetched into an empty HF cache (a) from a peer over a sealed link (cluster key), (b) from the
// fake hub, both through fetchFile (hash + write, as a real download), and (c) the same bytes over a raw Bun TCP
// socket on loopback (received and counted only: the transport's ceiling). Then hub bytes for a 3-node cold start
// of a sharded model without peers vs with peers (in-memory links). All in one process (2 shared cores).
// Usage: EXO_LOG_LEVEL=1 nice -n 10 bun bench/peer-fetch.ts [size_mib=256] [rounds=3]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { downloadRepo } from "../src/download/download.ts";
import { fetchFile } from "../src/download/fetch-file.ts";
import { repoCache } from "../src/download/hf-cache.ts";
import { peerFilesOver, servePeerFiles } from "../src/download/peer-files.ts";
import { GRANT_ALL } from "../src/download/peer-grants.ts";
import { DEFAULT_RETRY } from "../src/download/retry.ts";
import { PeerPool, type PeerAddress } from "../src/net/peer-pool.ts";
import { listenTcp } from "../src/net/sockets.ts";
import { PROTOCOL_VERSION, VERSION } from "../src/version.ts";
import { startFakeHub } from "../test/helpers/fake-hub.ts";
import { SHARDED_DIMS, SHARDED_FILES, shardedRepo } from "../test/helpers/hub-fixtures.ts";
import { createMemoryNetwork } from "../test/helpers/memory-transport.ts";

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? 256);
const rounds = Number(process.argv[3] ?? 3);
const KEY = new TextEncoder().encode("bench-cluster-key-0123456789abcdefghijklmnop");
const REPO = "bench-org/big";
const FILE = "model.safetensors";
const work = mkdtempSync(join(tmpdir(), "exo-peer-bench-"));

function makeNode(id: string) {
  let port = 0;
  const capabilities = { model: "Bench", chip: "cpu", memory: 1024, flops: { fp32: 1, fp16: 2, int8: 4 } };
  const pool = new PeerPool({
    selfId: id,
    hello: () => ({ nodeId: id, protocol: PROTOCOL_VERSION, version: VERSION, port, capabilities }),
    requestTimeoutMs: 60_000,
    healthTimeoutMs: 5000,
    dialTimeoutMs: 2000,
    handshakeTimeoutMs: 2000,
    maxFrameBytes: 256 * MiB,
    backoffMinMs: 50,
    backoffMaxMs: 500,
    clusterKey: KEY,
  });
  const server = listenTcp("127.0.0.1", 0, (s) => pool.accept(s));
  port = server.port;
  const addr: PeerAddress = { nodeId: id, address: "127.0.0.1", port };
  return { pool, server, addr };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

// The file: random bytes, on the hub's disk and in the serving peer's cache as a verified blob.
const bytes = new Uint8Array(sizeMiB * MiB);
for (let off = 0; off < bytes.length; off += 65536) crypto.getRandomValues(bytes.subarray(off, off + 65536));
const source = join(work, "source.bin");
writeFileSync(source, bytes);
const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
const hub = await startFakeHub([{ id: REPO, files: [{ path: FILE, diskPath: source }] }]);
const served = join(work, "served");
await mkdir(join(repoCache(served, REPO).dir, "blobs"), { recursive: true });
writeFileSync(repoCache(served, REPO).blobPath(sha256), bytes);

const a = makeNode("a");
const b = makeNode("b");
servePeerFiles(a.pool, served, GRANT_ALL);
a.pool.setPeers([b.addr]);
b.pool.setPeers([a.addr]);
for (const deadline = performance.now() + 10_000; !b.pool.peersUp().includes(a.addr.nodeId as never); ) {
  if (performance.now() > deadline) throw new Error("sealed link did not come up");
  await Bun.sleep(20);
}

async function fetchInto(kind: "peer" | "hub", round: number): Promise<number> {
  const dir = join(work, `${kind}-${round}`);
  const cache = repoCache(dir, REPO);
  await mkdir(join(cache.dir, "blobs"), { recursive: true });
  const job = {
    repo: REPO,
    path: FILE,
    url: `${hub.url}/${REPO}/resolve/${hub.commit(REPO)}/${FILE}`,
    size: bytes.length,
    etag: sha256,
    incompletePath: cache.incompletePath(sha256),
    blobPath: cache.blobPath(sha256),
  };
  const start = performance.now();
  await fetchFile(job, {
    hub: { endpoint: hub.url },
    policy: DEFAULT_RETRY,
    onBytes: () => {},
    ...(kind === "peer" ? { peers: peerFilesOver(b.pool), hubless: "bench: peers only" } : {}),
  });
  const secs = (performance.now() - start) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return bytes.length / MiB / secs;
}

async function rawTcp(): Promise<number> {
  let received = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => {
    done = r;
  });
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(_s, d) {
        received += d.length;
        if (received >= bytes.length) done();
      },
    },
  });
  const start = performance.now();
  let off = 0;
  let client: Awaited<ReturnType<typeof Bun.connect>> | undefined;
  const pump = () => {
    while (off < bytes.length && client) {
      const n = client.write(bytes.subarray(off, Math.min(off + 4 * MiB, bytes.length)));
      off += n;
      if (n === 0) return;
    }
  };
  client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: { data() {}, drain: pump },
  });
  pump();
  await finished;
  const secs = (performance.now() - start) / 1000;
  client.end();
  server.stop(true);
  return bytes.length / MiB / secs;
}

const results = { peer: [] as number[], hub: [] as number[], raw: [] as number[] };
for (let r = 0; r < rounds; r++) {
  results.raw.push(await rawTcp());
  results.peer.push(await fetchInto("peer", r));
  results.hub.push(await fetchInto("hub", r));
}

// Hub bytes for a 3-node cold start, without and with peers.
async function coldStart(withPeers: boolean): Promise<number> {
  const small = await startFakeHub([shardedRepo("bench-org/sharded", SHARDED_DIMS, SHARDED_FILES)]);
  const net = createMemoryNetwork();
  const nodes = ["x", "y", "z"].map((id) => ({ transport: net.add(id), cache: join(work, `cold-${withPeers}-${id}`) }));
  if (withPeers) for (const n of nodes) servePeerFiles(n.transport, n.cache, GRANT_ALL);
  await Promise.all(
    nodes.map((n) =>
      downloadRepo(
        { modelId: "sharded", repo: "bench-org/sharded" },
        {
          hub: { endpoint: small.url },
          hubCacheDir: n.cache,
          offline: false,
          ...(withPeers ? { peers: peerFilesOver(n.transport) } : {}),
        },
      ),
    ),
  );
  const cdn = small.cdnRequests.reduce((s, r) => s + r.bytesSent, 0);
  await small.stop();
  return cdn;
}
const coldBefore = await coldStart(false);
const coldAfter = await coldStart(true);

const load = (await Bun.file("/proc/loadavg").text()).trim();
const m = { peer: median(results.peer), hub: median(results.hub), raw: median(results.raw) };
console.log(`file of ${sizeMiB} MiB, ${rounds} rounds, medians (MiB/s); load average ${load}`);
console.log("| path                                  | MiB/s  | vs raw TCP |");
console.log("| ------------------------------------- | ------ | ---------- |");
console.log(
  `| peer over sealed link (hash + write)  | ${m.peer.toFixed(0).padStart(6)} | ${(m.peer / m.raw).toFixed(2).padStart(10)} |`,
);
console.log(
  `| fake hub (hash + write)               | ${m.hub.toFixed(0).padStart(6)} | ${(m.hub / m.raw).toFixed(2).padStart(10)} |`,
);
console.log(`| raw TCP loopback (count only)         | ${m.raw.toFixed(0).padStart(6)} | ${"1.00".padStart(10)} |`);
console.log(
  `3-node cold start, hub CDN bytes: without peers ${coldBefore}, with peers ${coldAfter} (ratio ${(coldAfter / coldBefore).toFixed(2)})`,
);
console.log(
  JSON.stringify({
    bench: "peer-fetch",
    sizeMiB,
    rounds,
    mibPerSec: m,
    peerVsRaw: m.peer / m.raw,
    hubVsRaw: m.hub / m.raw,
    coldStartHubBytes: { before: coldBefore, after: coldAfter, ratio: coldAfter / coldBefore },
    load,
  }),
);

a.pool.stop();
b.pool.stop();
a.server.stop();
b.server.stop();
await hub.stop();
rmSync(work, { recursive: true, force: true });
process.exit(0);
