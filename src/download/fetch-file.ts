// Downloads one file into the cache: appends to blobs/<etag>.incomplete from the bytes already on disk
// (HTTP Range), hashes while writing, and renames to blobs/<etag> only when the hash matches the ETag.
// Drops, stalls and 5xx are retried with backoff; a corrupt result is deleted and fetched again.
import { closeSync, openSync, writeSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { NodeError } from "../errors.ts";
import { logger } from "../log.ts";
import { fileSize } from "./hf-cache.ts";
import { createHasher, type Hasher } from "./hasher.ts";
import { arrivalSource, arrivedBytes, endArrival, startArrival } from "./arrivals.ts";
import type { PeerFiles } from "./peer-files.ts";
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
  /** Peers asked for the blob before the hub (peer-files.ts). */
  peers?: PeerFiles;
  /** Why the hub must not be used (offline, unreachable): peers only. */
  hubless?: string;
  /** `bytes` more of this file came from `source` ("hub" or a peer's node id): progress shows where bytes came from. */
  onSource?(source: string, bytes: number): void;
}

/**
 * Ensures blobs/<etag> holds the verified file.
 * @throws E_DOWNLOAD_AUTH, E_DOWNLOAD_NOT_FOUND, E_DOWNLOAD_DISK_FULL, E_DOWNLOAD_VERIFY (corrupt every time), E_DOWNLOAD (gave up), E_CANCELLED.
 */
export async function fetchFile(job: FileJob, deps: FetchFileDeps): Promise<void> {
  // Marked before peers are asked, so two nodes starting at once see each other (peer-files.ts).
  startArrival(job.blobPath);
  try {
    await fetchFileOnce(job, deps);
  } finally {
    endArrival(job.blobPath);
  }
}

async function fetchFileOnce(job: FileJob, deps: FetchFileDeps): Promise<void> {
  const openWriter = deps.openWriter ?? openAppendWriter;
  let failures = 0;
  let hasher: Hasher | undefined;
  // Peers that served bytes failing verification are not asked for this file again.
  const dropped = new Set<string>();
  let servedBy = new Set<string>();
  for (;;) {
    if (deps.signal?.aborted) throw new NodeError("E_CANCELLED", `download of ${job.repo}/${job.path} cancelled`);
    let have = await fileSize(job.incompletePath);
    if (have > job.size) have = await restart(job);
    if (!hasher || hasher.bytes !== have) hasher = await hashPrefix(job, have);
    arrivedBytes(job.blobPath, have);
    deps.onBytes(have);
    let failure: unknown;
    if (have < job.size && deps.peers) {
      const from = await fromPeers(job, hasher, openWriter, deps, dropped);
      for (const p of from) servedBy.add(p);
    }
    if (hasher.bytes < job.size && deps.hubless) {
      const peerNote = deps.peers ? "no peer holds it" : "no peer to ask";
      if (hasher.bytes === have)
        throw new NodeError("E_DOWNLOAD_OFFLINE", `${deps.hubless}, and ${peerNote}: ${job.repo}/${job.path}`);
      failure = new TransientError(`${job.path}: peers stopped at ${hasher.bytes} of ${job.size} bytes`);
    } else if (hasher.bytes < job.size) {
      try {
        arrivalSource(job.blobPath, "hub");
        await transfer(job, hasher.bytes, hasher, openWriter, deps);
      } catch (err) {
        if (!isTransient(err)) throw err;
        failure = err;
      }
    }
    if (failure === undefined && hasher.bytes === job.size) {
      const digest = hasher.digest();
      const suspects = [...servedBy];
      servedBy = new Set();
      if (digest !== job.etag) for (const p of suspects) dropped.add(p);
      if (digest === job.etag) {
        await rename(job.incompletePath, job.blobPath);
        deps.onBytes(job.size);
        return;
      }
      await restart(job);
      hasher = undefined;
      failure = new NodeError(
        "E_DOWNLOAD_VERIFY",
        `${job.repo}/${job.path} failed verification: hash ${digest} instead of ${job.etag}`,
      );
      const from = suspects.length > 0 ? ` (bytes from peer ${suspects.join(", ")}, not asked again for it)` : "";
      log.warn(`${(failure as Error).message}${from}; deleted, fetching again`);
    }
    const progressed = (await fileSize(job.incompletePath)) > have;
    failures = progressed ? 0 : failures + 1;
    if (failures >= deps.policy.attempts) {
      const reason = (failure as Error | undefined)?.message ?? "short file";
      if ((failure as NodeError | undefined)?.code === "E_DOWNLOAD_VERIFY") throw failure;
      throw new NodeError(
        "E_DOWNLOAD",
        `gave up on ${job.repo}/${job.path} after ${failures} failed tries: ${reason}`,
        { cause: failure },
      );
    }
    log.debug(`retrying ${job.path} (${failures}): ${(failure as Error | undefined)?.message}`);
    if (!progressed) await Bun.sleep(backoffMs(deps.policy, failures));
  }
}

// --- internal ---

/**
 * Appends the rest of the blob from peers that hold it, keeping `peers.window` reads of `peers.chunkBytes` in
 * flight so the link stays busy across each round trip; every chunk is written where it belongs (in order)
 * and hashed as it lands. A peer that fails is left for the next one, which continues at the same offset: no
 * byte is written twice. Returns the peers that sent bytes.
 */
async function fromPeers(
  job: FileJob,
  hasher: Hasher,
  openWriter: OpenWriter,
  deps: FetchFileDeps,
  dropped: Set<string>,
): Promise<string[]> {
  const peers = deps.peers as PeerFiles;
  arrivalSource(job.blobPath, "deciding");
  const holders = (await peers.holders(job.repo, job.etag, job.size)).filter((p) => !dropped.has(p));
  const served: string[] = [];
  for (const peer of holders) {
    if (hasher.bytes >= job.size) break;
    let writer: BlobWriter | undefined;
    const inFlight: Promise<Uint8Array>[] = [];
    let asked = hasher.bytes;
    const askAhead = () => {
      while (inFlight.length < Math.max(1, peers.window) && asked < job.size) {
        const length = Math.min(peers.chunkBytes, job.size - asked);
        const read = peers.read(peer, job.repo, job.etag, asked, length);
        read.catch(() => {}); // a failure is seen when awaited below (or dropped with the peer)
        inFlight.push(read);
        asked += length;
      }
    };
    try {
      askAhead();
      while (hasher.bytes < job.size) {
        if (deps.signal?.aborted) throw new NodeError("E_CANCELLED", `download of ${job.repo}/${job.path} cancelled`);
        const chunk = await (inFlight.shift() as Promise<Uint8Array>);
        askAhead();
        arrivalSource(job.blobPath, "peer");
        try {
          writer ??= await openWriter(job.incompletePath);
          await writer.write(chunk);
        } catch (err) {
          throw diskError(err, job);
        }
        hasher.update(chunk);
        arrivedBytes(job.blobPath, hasher.bytes);
        if (served.at(-1) !== peer) served.push(peer);
        deps.onSource?.(peer, chunk.length);
        deps.onBytes(hasher.bytes);
      }
    } catch (err) {
      const code = (err as NodeError).code;
      if (code === "E_CANCELLED" || code === "E_DOWNLOAD_DISK_FULL") throw err;
      log.warn(`${job.path}: peer ${peer} stopped at ${hasher.bytes} of ${job.size} bytes: ${(err as Error).message}`);
    } finally {
      await writer?.close();
    }
  }
  return served;
}

async function restart(job: FileJob): Promise<number> {
  await rm(job.incompletePath, { force: true });
  return 0;
}

async function hashPrefix(job: FileJob, have: number): Promise<Hasher> {
  const hasher = createHasher(job.etag, job.size);
  if (have > 0) for await (const chunk of Bun.file(job.incompletePath).slice(0, have).stream()) hasher.update(chunk);
  return hasher;
}

async function transfer(
  job: FileJob,
  have: number,
  hasher: Hasher,
  openWriter: OpenWriter,
  deps: FetchFileDeps,
): Promise<void> {
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(new NodeError("E_CANCELLED", `download of ${job.repo}/${job.path} cancelled`));
  deps.signal?.addEventListener("abort", onOuterAbort, { once: true });
  // One watchdog per transfer (not a timer reset per chunk): no byte for stallTimeoutMs → abandon and resume.
  let stalled = false;
  let lastByteAt = performance.now();
  const watchdog = setInterval(
    () => {
      if (performance.now() - lastByteAt < deps.policy.stallTimeoutMs) return;
      stalled = true;
      abort.abort();
    },
    Math.max(10, Math.min(1000, deps.policy.stallTimeoutMs / 4)),
  );
  let writer: BlobWriter | undefined;
  const write = async (chunk: Uint8Array) => {
    try {
      writer ??= await openWriter(job.incompletePath);
      await writer.write(chunk);
    } catch (err) {
      throw diskError(err, job);
    }
    // Hashed only once on disk, so the hash always covers exactly the bytes of the file.
    hasher.update(chunk);
    arrivedBytes(job.blobPath, hasher.bytes);
    deps.onSource?.("hub", chunk.length);
  };
  try {
    const res = await get(job, have, deps.hub, abort.signal);
    if (res.status === 416) return void (await res.body?.cancel());
    const rangeStart = Number(/^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1] ?? have);
    if ((res.status === 200 && have > 0) || (res.status === 206 && rangeStart !== have)) {
      // The server ignored (or misread) Range: start over rather than append bytes at the wrong place.
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
      lastByteAt = performance.now();
      await write(chunk);
      received += chunk.length;
      deps.onBytes(received);
    }
    if (received < job.size)
      throw new TransientError(`${job.path}: connection closed at ${received} of ${job.size} bytes`);
  } catch (err) {
    if (stalled)
      throw new TransientError(
        `${job.path}: no data from ${new URL(job.url).host} for ${deps.policy.stallTimeoutMs} ms (stalled)`,
        { cause: err },
      );
    throw err;
  } finally {
    clearInterval(watchdog);
    deps.signal?.removeEventListener("abort", onOuterAbort);
    // Bytes that arrived before a drop are on disk: the next try resumes after them.
    await writer?.close();
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
    throw new NodeError(
      "E_DOWNLOAD_VERIFY",
      `${job.repo}/${job.path} changed on the hub (ETag ${etag}, expected ${job.etag}); pull again`,
    );
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

/**
 * The real writer: appends each chunk with a synchronous write. Measured on this machine (bench/download.ts
 * notes): faster than node's async FileHandle.write and on par with curl; Bun's FileSink was faster still but
 * reports ENOSPC only as unhandled rejections, and a full disk must be a clear error.
 */
export async function openAppendWriter(path: string): Promise<BlobWriter> {
  const fd = openSync(path, "a");
  return {
    async write(bytes) {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    },
    async close() {
      closeSync(fd);
    },
  };
}
