// A local stand-in for the Hugging Face hub: the API routes @huggingface/hub calls (revision info, tree),
// `resolve` with ETag / X-Repo-Commit / X-Linked-Etag and 302s to a raw-TCP "CDN" that honours Range,
// counts every body byte it sends, and injects faults (drops, corruption, stalls, 401/403, 404).
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Socket, TCPSocketListener } from "bun";

export interface FixtureFile {
  path: string;
  /** File content; written to disk when the hub starts. Use `diskPath` instead for big files. */
  bytes?: Uint8Array;
  diskPath?: string;
}

export interface FixtureRepo {
  id: string;
  files: FixtureFile[];
}

interface ServedFile {
  path: string;
  diskPath: string;
  size: number;
  sha256: string;
  gitSha1: string;
  /** Weight files are LFS on the hub: their ETag is the sha256 and their bytes come from the CDN. */
  lfs: boolean;
}

/** Faults to inject; mutate `hub.faults` between steps of a test. */
export interface HubFaults {
  /** Every request for this repo answers this status (gated: 401 without token, 403 when not accepted). */
  deny?: { repo: string; status: 401 | 403 };
  /** Requests without `Authorization: Bearer <token>` get 401. */
  requireToken?: string;
  /** Per file path: absolute byte offsets at which the CDN closes the connection (each used once). */
  dropAt?: Map<string, number[]>;
  /** Per file path: how many more times to serve it with one byte flipped. */
  corrupt?: Map<string, number>;
  /** Per file path: the CDN stops sending (keeps the connection open) once the body reaches this byte offset. */
  stallAt?: Map<string, number>;
  /** Paths the tree lists but `resolve` answers 404 for. */
  hide?: Set<string>;
  /** Per file path: how many more times `resolve` answers 503 (a transient hub error). */
  unavailable?: Map<string, number>;
}

export interface CdnRequest {
  path: string;
  rangeStart: number;
  bytesSent: number;
}

export interface FakeHub {
  url: string;
  commit(repoId: string): string;
  file(repoId: string, path: string): ServedFile;
  faults: HubFaults;
  /** Every body request the CDN answered. */
  cdnRequests: CdnRequest[];
  /** Paths of every request to the hub itself (API and resolve). */
  hubRequests: string[];
  /** Body bytes the CDN sent for one file, over all requests. */
  servedBytes(path: string): number;
  stop(): Promise<void>;
}

/** Starts the fake hub on 127.0.0.1 (port 0) serving the given repos. */
export async function startFakeHub(repos: FixtureRepo[]): Promise<FakeHub> {
  const root = await mkdtemp(join(tmpdir(), "exo-fake-hub-"));
  const served = new Map<string, { commit: string; files: Map<string, ServedFile> }>();
  for (const repo of repos) served.set(repo.id, await materialize(root, repo));
  const faults: HubFaults = {};
  const cdnRequests: CdnRequest[] = [];
  const hubRequests: string[] = [];
  const cdn = startCdn(served, faults, cdnRequests);
  const cdnUrl = `http://127.0.0.1:${cdn.port}`;

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => {
      hubRequests.push(new URL(req.url).pathname);
      return route(req, served, faults, cdnUrl);
    },
  });
  const lookup = (repoId: string) => {
    const repo = served.get(repoId);
    if (!repo) throw new Error(`fake hub has no repo ${repoId}`);
    return repo;
  };
  return {
    url: `http://127.0.0.1:${server.port}`,
    commit: (repoId) => lookup(repoId).commit,
    file: (repoId, path) => {
      const f = lookup(repoId).files.get(path);
      if (!f) throw new Error(`fake hub repo ${repoId} has no ${path}`);
      return f;
    },
    faults,
    cdnRequests,
    hubRequests,
    servedBytes: (path) => cdnRequests.filter((r) => r.path === path).reduce((n, r) => n + r.bytesSent, 0),
    async stop() {
      server.stop(true);
      cdn.stop(true);
      await rm(root, { recursive: true, force: true });
    },
  };
}

// --- internal ---

async function materialize(
  root: string,
  repo: FixtureRepo,
): Promise<{ commit: string; files: Map<string, ServedFile> }> {
  const files = new Map<string, ServedFile>();
  const commitHasher = new Bun.CryptoHasher("sha1");
  for (const f of repo.files) {
    let diskPath = f.diskPath;
    if (!diskPath) {
      diskPath = join(root, repo.id, f.path);
      await mkdir(dirname(diskPath), { recursive: true });
      await Bun.write(diskPath, f.bytes ?? new Uint8Array());
    }
    const { size, sha256, gitSha1 } = await digestFile(diskPath);
    files.set(f.path, { path: f.path, diskPath, size, sha256, gitSha1, lfs: f.path.endsWith(".safetensors") });
    commitHasher.update(`${f.path}:${sha256}\n`);
  }
  return { commit: commitHasher.digest("hex"), files };
}

async function digestFile(path: string): Promise<{ size: number; sha256: string; gitSha1: string }> {
  const file = Bun.file(path);
  const sha256 = new Bun.CryptoHasher("sha256");
  const sha1 = new Bun.CryptoHasher("sha1");
  sha1.update(`blob ${file.size}\0`);
  for await (const chunk of file.stream()) {
    sha256.update(chunk);
    sha1.update(chunk);
  }
  return { size: file.size, sha256: sha256.digest("hex"), gitSha1: sha1.digest("hex") };
}

type Served = Map<string, { commit: string; files: Map<string, ServedFile> }>;

async function route(req: Request, served: Served, faults: HubFaults, cdnUrl: string): Promise<Response> {
  const url = new URL(req.url);
  const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/?]+)/.exec(url.pathname);
  const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  const repoId = api?.[1] ?? resolve?.[1];
  if (!repoId) return error(404, "Not found", "");
  const denied = checkAccess(req, repoId, faults);
  if (denied) return denied;
  const repo = served.get(repoId);
  if (!repo) return error(404, `Repository not found: ${repoId}`, "RepoNotFound");
  const rev = decodeURIComponent((api?.[3] ?? resolve?.[2]) as string);
  if (rev !== "main" && rev !== repo.commit) return error(404, `Revision not found: ${rev}`, "RevisionNotFound");
  const files = [...repo.files.values()];

  if (api?.[2] === "revision") {
    const siblings = files.map((f) => ({ rfilename: f.path }));
    return Response.json({
      _id: repo.commit.slice(0, 24),
      id: repoId,
      sha: repo.commit,
      private: false,
      gated: false,
      downloads: 0,
      likes: 0,
      lastModified: "2026-01-01T00:00:00.000Z",
      siblings,
    });
  }
  if (api?.[2] === "tree") {
    return Response.json(
      files.map((f) => ({
        type: "file",
        oid: f.gitSha1,
        size: f.size,
        path: f.path,
        ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize: 134 } } : {}),
      })),
    );
  }
  const file = repo.files.get(decodeURIComponent(resolve?.[3] as string));
  if (!file || faults.hide?.has(file.path)) return error(404, `Entry not found: ${resolve?.[3]}`, "EntryNotFound");
  const unavailable = faults.unavailable?.get(file.path) ?? 0;
  if (unavailable > 0) {
    faults.unavailable?.set(file.path, unavailable - 1);
    return error(503, "Service temporarily unavailable", "");
  }
  const headers: Record<string, string> = { "X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes" };
  if (file.lfs) {
    const etag = `"${file.sha256}"`;
    Object.assign(headers, {
      "X-Linked-Etag": etag,
      "X-Linked-Size": String(file.size),
      ETag: etag,
      Location: `${cdnUrl}/${repoId}/${file.path}`,
    });
    return new Response(null, { status: 302, headers });
  }
  headers.ETag = `"${file.gitSha1}"`;
  const bytes = new Uint8Array(await Bun.file(file.diskPath).arrayBuffer());
  const range = parseRange(req.headers.get("range"), file.size);
  if (!range) return new Response(bytes, { headers });
  if (range.start >= file.size)
    return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${file.size}` } });
  headers["Content-Range"] = `bytes ${range.start}-${range.end}/${file.size}`;
  return new Response(bytes.slice(range.start, range.end + 1), { status: 206, headers });
}

function checkAccess(req: Request, repoId: string, faults: HubFaults): Response | undefined {
  if (faults.deny?.repo === repoId) {
    const status = faults.deny.status;
    return error(
      status,
      status === 401
        ? "Access to this model is restricted. You must be authenticated."
        : "Access to this model is restricted and you are not in the authorized list.",
      "GatedRepo",
    );
  }
  if (faults.requireToken && req.headers.get("authorization") !== `Bearer ${faults.requireToken}`) {
    return error(401, "Invalid credentials in Authorization header", "");
  }
  return undefined;
}

function error(status: number, message: string, code: string): Response {
  return Response.json({ error: message }, { status, headers: code ? { "X-Error-Code": code } : {} });
}

function parseRange(header: string | null | undefined, size: number): { start: number; end: number } | undefined {
  const m = header ? /^bytes=(\d+)-(\d*)$/.exec(header) : null;
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  return { start, end };
}

interface CdnConn {
  head: string;
  job?: {
    file: ServedFile;
    pos: number;
    end: number;
    dropAt?: number;
    stallAt?: number;
    corruptAt?: number;
    record: CdnRequest;
    pending?: Uint8Array;
    busy?: boolean;
  };
}

/** A raw HTTP/1.1 server so a dropped connection cuts at an exact byte and every byte sent is counted. */
function startCdn(served: Served, faults: HubFaults, log: CdnRequest[]): TCPSocketListener<CdnConn> {
  return Bun.listen<CdnConn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.data = { head: "" };
      },
      data(socket, chunk) {
        const conn = socket.data;
        if (conn.job) return;
        conn.head += chunk.toString("latin1");
        if (!conn.head.includes("\r\n\r\n")) return;
        startResponse(socket, served, faults, log);
      },
      drain(socket) {
        void pump(socket);
      },
      close(socket) {
        socket.data.job = undefined;
      },
    },
  });
}

function startResponse(socket: Socket<CdnConn>, served: Served, faults: HubFaults, log: CdnRequest[]): void {
  const [requestLine = "", ...lines] = socket.data.head.split("\r\n");
  const target = requestLine.split(" ")[1] ?? "/";
  const m = /^\/([^/]+\/[^/]+)\/(.+)$/.exec(target.split("?")[0] ?? "");
  const file = m ? served.get(m[1] as string)?.files.get(decodeURIComponent(m[2] as string)) : undefined;
  if (!file) {
    socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  const rangeLine = lines.find((l) => l.toLowerCase().startsWith("range:"));
  const range = parseRange(rangeLine?.slice(6).trim(), file.size);
  const start = range?.start ?? 0;
  const end = range?.end ?? file.size - 1;
  if (start >= file.size) {
    socket.end(
      `HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */${file.size}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    );
    return;
  }
  const record: CdnRequest = { path: file.path, rangeStart: start, bytesSent: 0 };
  log.push(record);
  const drops = faults.dropAt?.get(file.path) ?? [];
  const dropIdx = drops.findIndex((d) => d > start && d <= end);
  const dropAt = dropIdx >= 0 ? drops.splice(dropIdx, 1)[0] : undefined;
  const corruptLeft = faults.corrupt?.get(file.path) ?? 0;
  let corruptAt: number | undefined;
  if (corruptLeft > 0 && end - start > 0) {
    faults.corrupt?.set(file.path, corruptLeft - 1);
    corruptAt = start + Math.floor((end - start) / 2);
  }
  const stallAt = faults.stallAt?.get(file.path);
  socket.data.job = {
    file,
    pos: start,
    end: end + 1,
    dropAt,
    corruptAt,
    record,
    ...(stallAt === undefined ? {} : { stallAt }),
  };
  const status = range ? "206 Partial Content" : "200 OK";
  const contentRange = range ? `Content-Range: bytes ${start}-${end}/${file.size}\r\n` : "";
  socket.write(
    `HTTP/1.1 ${status}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${end + 1 - start}\r\n${contentRange}` +
      `ETag: "${file.sha256}"\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n`,
  );
  void pump(socket);
}

const CHUNK = 1 << 20;

/** Writes the body until the socket pushes back; `drain` resumes it. */
async function pump(socket: Socket<CdnConn>): Promise<void> {
  const job = socket.data.job;
  if (!job || job.busy) return;
  job.busy = true;
  try {
    await pumpJob(socket, job);
  } finally {
    job.busy = false;
  }
}

async function pumpJob(socket: Socket<CdnConn>, job: NonNullable<CdnConn["job"]>): Promise<void> {
  for (;;) {
    if (socket.data.job !== job) return;
    if (job.pending) {
      const wrote = Math.max(0, socket.write(job.pending));
      job.record.bytesSent += wrote;
      job.pos += wrote;
      job.pending = wrote < job.pending.length ? job.pending.subarray(wrote) : undefined;
      if (job.pending) return;
    }
    if (job.dropAt !== undefined && job.pos >= job.dropAt) return void socket.end();
    if (job.stallAt !== undefined && job.pos >= job.stallAt) return;
    if (job.pos >= job.end) return void socket.end();
    const limit = Math.min(job.end, job.pos + CHUNK, job.dropAt ?? Infinity, job.stallAt ?? Infinity);
    const from = job.pos;
    const bytes = new Uint8Array(await Bun.file(job.file.diskPath).slice(from, limit).arrayBuffer());
    if (job.corruptAt !== undefined && job.corruptAt >= from && job.corruptAt < limit) {
      const i = job.corruptAt - from;
      bytes[i] = (bytes[i] as number) ^ 0xff;
    }
    job.pending = bytes;
  }
}
