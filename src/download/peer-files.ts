// Model files shared between nodes over the cluster's links: a node answers BLOB_HAVE / BLOB_READ / REPO_FILES
// from its HF cache (verified blobs only, found by repo + content hash, never by a path from the wire), weights
// only for repos of a model the asking peer is preparing (ServeGrants); it asks its peers the same before it goes
// to the hub. The bytes a peer sends are verified by the fetcher (fetch-file.ts).
import { readdir, readlink, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { NodeError } from "../errors.ts";
import type { PeerTransport } from "../net/transport.ts";
import { arrival, waitForBytes } from "./arrivals.ts";
import { repoCache } from "./hf-cache.ts";
import type { RepoFile } from "./hub.ts";
import { isSupportFile } from "./select-files.ts";

/** Largest BLOB_READ: small enough that inference frames on the same link wait at most one chunk. */
export const PEER_CHUNK_BYTES = 4 * 1024 * 1024;
/** Bytes asked per BLOB_READ: one sealed frame of file data costs an inference frame behind it ~1 ms on loopback. */
const CHUNK_BYTES = 1024 * 1024;
/**
 * BLOB_READs in flight per peer, over all files fetched from it: keeps the link busy across the round trip
 * while bounding the file bytes in flight on one link to WINDOW * CHUNK_BYTES.
 */
const WINDOW = 8;
const ASK_TIMEOUT_MS = 5_000;
/** A BLOB_READ of a blob still arriving waits while its bytes keep coming, up to STREAM_WAIT_MS in all... */
const STREAM_WAIT_MS = 40_000;
/** ...but answers "not yet" once no new byte of it arrived for STREAM_STALL_MS. */
const STREAM_STALL_MS = 15_000;

/** Who may read which repo: a peer only the repos of models it is preparing (peer-grants.ts). */
export interface ServeGrants {
  allows(peer: string, repo: string): boolean;
}

const REPO = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const COMMIT = /^[0-9a-f]{40}$/;
/** A top-level file name of a model repo (no folder, no "..", no hidden file). */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

/** What a fetcher needs of its peers (fetch-file.ts, download.ts); tests inject fakes. */
export interface PeerFiles {
  /** Bytes asked for per BLOB_READ (at most PEER_CHUNK_BYTES). */
  readonly chunkBytes: number;
  /** BLOB_READs one file keeps in flight (the link stays busy across the round trip). */
  readonly window: number;
  /** Peers that hold the verified blob `etag` of `repo`, of `size` bytes. */
  holders(repo: string, etag: string, size: number): Promise<string[]>;
  /** Bytes [offset, offset + length) of the blob, from `peer`. */
  read(peer: string, repo: string, etag: string, offset: number, length: number): Promise<Uint8Array>;
  /** A cached snapshot of `repo` some peer holds (commit and files), merged over the peers at that commit. */
  listing(repo: string): Promise<{ commit: string; files: RepoFile[]; from: string[] } | undefined>;
}

/** Answers peers' BLOB_HAVE, BLOB_READ and REPO_FILES from the hub cache at `hubCacheDir`, as `grants` allow. */
export function servePeerFiles(transport: PeerTransport, hubCacheDir: string, grants: ServeGrants): void {
  // Weights only to a peer preparing the model; a model's support files (config, tokenizer: what a node reads
  // to resolve a model before any plan, so before it prepares anything) and its listing to any peer of the
  // cluster (each proved who it is at HELLO). A refusal is the same answer as a blob that is not here.
  const allowed = async (repo: string, etag: string, from: string) => {
    if (grants.allows(from, repo)) return;
    const listed = await cachedFiles(hubCacheDir, repo);
    if (listed?.files.some((f) => f.etag === etag && isSupportFile(f.path))) return;
    throw notHere(`${repo} is not a model ${from} is preparing`);
  };
  transport.handle("BLOB_HAVE", async (msg, from) => {
    const { repo, etag } = blobRef(msg.fields);
    await allowed(repo, etag, from);
    const cache = repoCache(hubCacheDir, repo);
    const arriving = arrival(cache.blobPath(etag))?.from;
    if (arriving && isCount(msg.fields.size)) return { type: "OK", fields: { size: msg.fields.size, arriving } };
    const size = await blobSize(hubCacheDir, repo, etag);
    return { type: "OK", fields: { size } };
  });
  transport.handle("BLOB_READ", async (msg, from) => {
    const { repo, etag } = blobRef(msg.fields);
    await allowed(repo, etag, from);
    const offset = msg.fields.offset;
    const length = msg.fields.length;
    if (!isCount(offset) || !isCount(length) || length > PEER_CHUNK_BYTES)
      throw new NodeError("E_INVALID_REQUEST", `BLOB_READ needs offset >= 0 and 0 <= length <= ${PEER_CHUNK_BYTES}`);
    const body = await readRange(repoCache(hubCacheDir, repo), repo, etag, offset, length);
    // File bytes go out only while the link has nothing else queued: activations and tokens first.
    return { type: "OK", fields: { offset }, body, bulk: true };
  });
  transport.handle("REPO_FILES", async (msg) => {
    const repo = msg.fields.repo;
    if (typeof repo !== "string" || !REPO.test(repo) || repo.includes(".."))
      throw new NodeError("E_INVALID_REQUEST", "REPO_FILES needs repo as org/name");
    const listed = await cachedFiles(hubCacheDir, repo);
    if (!listed) throw notHere(`${repo} is not cached`);
    return { type: "OK", fields: listed };
  });
}

/** PeerFiles over the cluster's links: asks every peer that is up, at once, with short deadlines. */
export function peerFilesOver(transport: PeerTransport): PeerFiles {
  const slots = new Map<string, Semaphore>();
  return {
    chunkBytes: CHUNK_BYTES,
    window: WINDOW,
    async holders(repo, etag, size) {
      const answers = await Promise.all(
        transport.peersUp().map(async (peer) => {
          try {
            const res = await transport.request(peer, "BLOB_HAVE", { repo, etag, size }, undefined, {
              timeoutMs: ASK_TIMEOUT_MS,
            });
            if (res.fields.size !== size) return undefined;
            // A blob still arriving is taken only from a lower node id: two fetchers never wait on each other.
            const arriving = res.fields.arriving;
            if (arriving === undefined) return { peer, rank: 0 };
            if (arriving === "hub") return { peer, rank: 1 };
            return peer < transport.selfId ? { peer, rank: 2 } : undefined;
          } catch {
            return undefined; // "not here", an old build, or a peer that went down: ask the others
          }
        }),
      );
      // Verified copies first, then copies arriving from the hub, then the rest.
      const found = answers.flatMap((a) => (a === undefined ? [] : [a]));
      return found.sort((x, y) => x.rank - y.rank).map((a) => a.peer as string);
    },
    async read(peer, repo, etag, offset, length) {
      const slot = slots.get(peer) ?? new Semaphore(WINDOW);
      slots.set(peer, slot);
      return slot.run(async () => {
        const res = await transport.request(peer, "BLOB_READ", { repo, etag, offset, length }, undefined, {
          timeoutMs: STREAM_WAIT_MS + ASK_TIMEOUT_MS,
        });
        if (res.body.length !== length)
          throw new NodeError("E_DOWNLOAD", `${peer} sent ${res.body.length} bytes of ${repo} blob, not ${length}`);
        return res.body;
      });
    },
    async listing(repo) {
      const answers = await Promise.all(
        transport.peersUp().map(async (peer) => {
          try {
            const res = await transport.request(peer, "REPO_FILES", { repo }, undefined, { timeoutMs: ASK_TIMEOUT_MS });
            return { peer, ...checkedListing(res.fields) };
          } catch {
            return undefined;
          }
        }),
      );
      const found = answers.filter((a): a is NonNullable<typeof a> => a !== undefined);
      const first = found[0];
      if (!first) return undefined;
      const same = found.filter((a) => a.commit === first.commit);
      const files = new Map<string, RepoFile>();
      for (const a of same) for (const f of a.files) files.set(f.path, f);
      return { commit: first.commit, files: [...files.values()], from: same.map((a) => a.peer) };
    },
  };
}

// --- internal ---

function notHere(why: string): NodeError {
  return new NodeError("E_DOWNLOAD_NOT_FOUND", `not here: ${why}`);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Repo and content hash from the wire, checked before either comes near the cache. */
function blobRef(fields: Record<string, unknown>): { repo: string; etag: string } {
  const { repo, etag } = fields;
  if (typeof repo !== "string" || !REPO.test(repo) || repo.includes(".."))
    throw new NodeError("E_INVALID_REQUEST", "blob requests need repo as org/name");
  if (typeof etag !== "string" || !ETAG.test(etag))
    throw new NodeError("E_INVALID_REQUEST", "blob requests need etag as a sha256 or git sha1 in hex");
  return { repo, etag };
}

/** Size of a verified blob (renamed from .incomplete only after its hash matched), or "not here". */
async function blobSize(hubCacheDir: string, repo: string, etag: string): Promise<number> {
  const s = await stat(repoCache(hubCacheDir, repo).blobPath(etag)).catch(() => undefined);
  if (!s?.isFile()) throw notHere(`no verified blob ${etag} of ${repo}`);
  return s.size;
}

/**
 * Bytes of a verified blob, or of one this process is still fetching once they are on disk (woken by each write
 * of it, for as long as its bytes keep coming); the reader verifies the whole file, so unverified bytes served
 * early are safe.
 */
async function readRange(
  cache: ReturnType<typeof repoCache>,
  repo: string,
  etag: string,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const blobPath = cache.blobPath(etag);
  for (;;) {
    const size = await stat(blobPath).then(
      (s) => (s.isFile() ? s.size : undefined),
      () => undefined,
    );
    if (size !== undefined) {
      if (offset + length > size)
        throw new NodeError("E_INVALID_REQUEST", `BLOB_READ past the end of ${repo} blob ${etag} (${size} bytes)`);
      return Bun.file(blobPath)
        .slice(offset, offset + length)
        .bytes();
    }
    if (!arrival(blobPath)) throw notHere(`no verified blob ${etag} of ${repo}`);
    const waited = await waitForBytes(blobPath, offset + length, STREAM_STALL_MS, STREAM_WAIT_MS);
    if (waited === "stalled")
      throw new NodeError("E_PEER_TIMEOUT", `${repo} blob ${etag}: byte ${offset + length} not here yet`);
    if (waited === "ended") continue; // verified and renamed (read it from there), or failed (not here)
    const bytes = await Bun.file(cache.incompletePath(etag))
      .slice(offset, offset + length)
      .bytes()
      .catch(() => undefined); // renamed to the blob meanwhile: read it from there
    if (bytes?.length === length) return bytes;
  }
}

/** The top-level files of the snapshot refs/main points to, each with the blob its link points at. */
async function cachedFiles(
  hubCacheDir: string,
  repo: string,
): Promise<{ commit: string; files: RepoFile[] } | undefined> {
  const cache = repoCache(hubCacheDir, repo);
  const commit = await cache.readRef("main");
  if (!commit) return undefined;
  const dir = cache.snapshotDir(commit);
  const names = await readdir(dir).catch(() => [] as string[]);
  const files: RepoFile[] = [];
  for (const name of names) {
    if (!FILE_NAME.test(name)) continue;
    const etag = basename((await readlink(join(dir, name)).catch(() => "")) || "");
    if (!ETAG.test(etag)) continue;
    const size = await stat(cache.blobPath(etag)).then(
      (s) => s.size,
      () => undefined,
    );
    if (size !== undefined) files.push({ path: name, etag, size });
  }
  return files.length > 0 ? { commit, files } : undefined;
}

/** A peer's REPO_FILES answer, checked: names, hashes and sizes from the wire are never trusted as paths. */
function checkedListing(fields: Record<string, unknown>): { commit: string; files: RepoFile[] } {
  const { commit, files } = fields;
  if (typeof commit !== "string" || !COMMIT.test(commit) || !Array.isArray(files))
    throw new NodeError("E_PROTOCOL_PAYLOAD", "REPO_FILES answer needs commit and files");
  const checked: RepoFile[] = [];
  for (const f of files as Record<string, unknown>[]) {
    const ok =
      typeof f?.path === "string" &&
      FILE_NAME.test(f.path) &&
      typeof f.etag === "string" &&
      ETAG.test(f.etag) &&
      isCount(f.size);
    if (ok) checked.push({ path: f.path as string, etag: f.etag as string, size: f.size as number });
  }
  return { commit, files: checked };
}

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}
