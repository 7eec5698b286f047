// Downloads one file into the cache: appends to blobs/<etag>.incomplete from the bytes already on disk
// (HTTP Range), hashes while writing, and renames to blobs/<etag> only when the hash matches the ETag.
// Drops, stalls and 5xx are retried with backoff; a corrupt result is deleted and fetched again.
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { fileSize } from "./hf-cache.ts";
import { authFetch, statusError, type HubOptions } from "./hub.ts";
import { backoffMs, isTransient, TransientError, type RetryPolicy } from "./retry.ts";

const log = logger("download");

/** Appends bytes to a file; injected in tests to simulate a full disk. */
export interface BlobWriter {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}
export type OpenWriter = (path: string) => Promise<BlobWriter>;

export interface FileJob {
  repo: string;
  path: string;
  url: string;
  size: number;
  etag: string;
  incompletePath: string;
  blobPath: string;
}

export interface FetchFileDeps {
  hub: HubOptions;
  policy: RetryPolicy;
  openWriter?: OpenWriter;
  /** Bytes of this file on disk or in hand so far (called often; throttle downstream). */
  onBytes(bytes: number): void;
  signal?: AbortSignal;
}

/** Bytes gathered before one write: big writes keep throughput near the network's. */
const FLUSH_BYTES = 4 << 20;

/**
 * Ensures blobs/<etag> holds the verified file.
 * @throws E_DOWNLOAD_AUTH, E_DOWNLOAD_NOT_FOUND, E_DOWNLOAD_DISK_FULL, E_DOWNLOAD_VERIFY (corrupt every time), E_DOWNLOAD (gave up), E_CANCELLED.
 */
export async function fetchFile(job: FileJob, deps: FetchFileDeps): Promise<void> {
  const openWriter = deps.openWriter ?? openAppendWriter;
  let failures = 0;
  let hasher: Hasher | undefined;
  for (;;) {
    if (deps.signal?.aborted) throw new NodeError("E_CANCELLED", `download of ${job.repo}/${job.path} cancelled`);
    let have = await fileSize(job.incompletePath);
    if (have > job.size) have = await restart(job);
    if (!hasher || hasher.bytes !== have) hasher = await hashPrefix(job, have);
    deps.onBytes(have);
    let failure: unknown;
    if (have < job.size) {
      try {
        await transfer(job, have, hasher, openWriter, deps);
      } catch (err) {
        if (!isTransient(err)) throw err;
        failure = err;
      }
    }
    if (failure === undefined && hasher.bytes === job.size) {
      const digest = hasher.digest();
      if (digest === job.etag) {
        await rename(job.incompletePath, job.blobPath);
        deps.onBytes(job.size);
        return;
      }
      await restart(job);
      hasher = undefined;
      failure = new NodeError("E_DOWNLOAD_VERIFY", `${job.repo}/${job.path} failed verification: hash ${digest} instead of ${job.etag}`);
      log.warn(`${(failure as Error).message}; deleted, fetching again`);
    }
    const progressed = (await fileSize(job.incompletePath)) > have;
    failures = progressed ? 0 : failures + 1;
    if (failures >= deps.policy.attempts) {
      const reason = (failure as Error | undefined)?.message ?? "short file";
      if ((failure as NodeError | undefined)?.code === "E_DOWNLOAD_VERIFY") throw failure;
      throw new NodeError("E_DOWNLOAD", `gave up on ${job.repo}/${job.path} after ${failures} failed tries: ${reason}`, { cause: failure });
    }
    log.debug(`retrying ${job.path} (${failures}): ${(failure as Error | undefined)?.message}`);
    if (!progressed) await Bun.sleep(backoffMs(deps.policy, failures));
  }
}

/** Hash (sha256 for LFS, git blob sha1 otherwise) fed as bytes reach the disk. */
export interface Hasher {
  bytes: number;
  update(chunk: Uint8Array): void;
  digest(): string;
}

/** A hasher matching the kind of `etag` (64 hex → sha256, 40 hex → git blob sha1 of a `size`-byte file). */
export function createHasher(etag: string, size: number): Hasher {
  const gitBlob = etag.length === 40;
  const inner = new Bun.CryptoHasher(gitBlob ? "sha1" : "sha256");
  if (gitBlob) inner.update(`blob ${size}\0`);
  const h: Hasher = {
    bytes: 0,
    update(chunk) {
      inner.update(chunk);
      h.bytes += chunk.length;
    },
    digest: () => inner.digest("hex"),
  };
  return h;
}

// --- internal ---

async function restart(job: FileJob): Promise<number> {
  await rm(job.incompletePath, { force: true });
  return 0;
}

async function hashPrefix(job: FileJob, have: number): Promise<Hasher> {
  const hasher = createHasher(job.etag, job.size);
  if (have > 0) for await (const chunk of Bun.file(job.incompletePath).slice(0, have).stream()) hasher.update(chunk);
  return hasher;
}

async function transfer(job: FileJob, have: number, hasher: Hasher, openWriter: OpenWriter, deps: FetchFileDeps): Promise<void> {
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(new NodeError("E_CANCELLED", `download of ${job.repo}/${job.path} cancelled`));
  deps.signal?.addEventListener("abort", onOuterAbort, { once: true });
  let stalled = false;
  let timer: Timer | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, deps.policy.stallTimeoutMs);
  };
  let writer: BlobWriter | undefined;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const buf = pending.length === 1 ? (pending[0] as Uint8Array) : Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    try {
      writer ??= await openWriter(job.incompletePath);
      await writer.write(buf);
    } catch (err) {
      throw diskError(err, job);
    }
    hasher.update(buf);
  };
  try {
    arm();
    const res = await get(job, have, deps.hub, abort.signal);
    if (res.status === 416) return void (await res.body?.cancel());
    if (res.status === 200 && have > 0) {
      // The server ignored Range: start over rather than append a second copy.
      await res.body?.cancel();
      await restart(job);
      throw new TransientError(`${job.path}: server ignored the Range request; restarting the file`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw statusError(res.status, deps.hub, job.repo, job.path);
    }
    checkEtag(res, job);
    let received = have;
    for await (const chunk of res.body as ReadableStream<Uint8Array>) {
      arm();
      pending.push(chunk);
      pendingBytes += chunk.length;
      received += chunk.length;
      deps.onBytes(received);
      if (pendingBytes >= FLUSH_BYTES) await flush();
    }
    if (received < job.size) throw new TransientError(`${job.path}: connection closed at ${received} of ${job.size} bytes`);
  } catch (err) {
    if (stalled) throw new TransientError(`${job.path}: no data from ${new URL(job.url).host} for ${deps.policy.stallTimeoutMs} ms (stalled)`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    deps.signal?.removeEventListener("abort", onOuterAbort);
    // Bytes that arrived before a drop are good: keep them so the next try resumes after them.
    try {
      await flush();
    } finally {
      await writer?.close();
    }
  }
}

/** GET with Range, following redirects by hand so the token never leaves the hub's origin. */
async function get(job: FileJob, have: number, hub: HubOptions, signal: AbortSignal): Promise<Response> {
  const doFetch = authFetch(hub);
  let url = job.url;
  for (let hop = 0; hop < 5; hop++) {
    const headers: Record<string, string> = have > 0 ? { Range: `bytes=${have}-` } : {};
    const res = await doFetch(url, { headers, signal, redirect: "manual" });
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      url = new URL(location, url).href;
      continue;
    }
    return res;
  }
  throw new NodeError("E_DOWNLOAD", `too many redirects for ${job.repo}/${job.path}`);
}

/** A hub ETag that is a content hash must be the one we expect: otherwise the file changed under us. */
function checkEtag(res: Response, job: FileJob): void {
  const raw = res.headers.get("x-linked-etag") ?? res.headers.get("etag");
  const etag = raw?.replace(/^W\//, "").replaceAll('"', "");
  if (etag && etag.length === job.etag.length && /^[0-9a-f]+$/.test(etag) && etag !== job.etag) {
    throw new NodeError("E_DOWNLOAD_VERIFY", `${job.repo}/${job.path} changed on the hub (ETag ${etag}, expected ${job.etag}); pull again`);
  }
}

function diskError(err: unknown, job: FileJob): unknown {
  if ((err as { code?: unknown }).code !== "ENOSPC") return err;
  return new NodeError(
    "E_DOWNLOAD_DISK_FULL",
    `disk full while writing ${job.path} in ${dirname(job.blobPath)}: ${job.size} bytes needed for this file; free some space and pull again (the bytes so far are kept)`,
    { cause: err },
  );
}

/** The real writer: appends to the file at `path`. */
export async function openAppendWriter(path: string): Promise<BlobWriter> {
  const fh = await open(path, "a");
  return {
    async write(bytes) {
      let off = 0;
      while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
    },
    close: () => fh.close(),
  };
}
