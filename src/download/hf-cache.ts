// Hugging Face's cache layout, shared with other HF tools: <hub cache>/models--org--name/ holds
// blobs/<etag> (content-addressed), snapshots/<commit>/<path> (relative symlinks to blobs) and refs/main.
import { closeSync, openSync, writeSync } from "node:fs";
import { lstat, mkdir, readlink, rm, stat, symlink, unlink } from "node:fs/promises";
import { dirname, join, relative } from "node:path";

/** models--org--name, as huggingface_hub names a model repo's folder. */
export function repoFolderName(repo: string): string {
  return `models--${repo.replaceAll("/", "--")}`;
}

export interface RepoCache {
  dir: string;
  blobPath(etag: string): string;
  /** Where a blob is written while it downloads; renamed to blobPath only after verification. */
  incompletePath(etag: string): string;
  snapshotDir(commit: string): string;
  /** The commit a ref (e.g. "main") points to, if recorded. */
  readRef(ref: string): Promise<string | undefined>;
  writeRef(ref: string, commit: string): Promise<void>;
  /** Points snapshots/<commit>/<path> at the blob (relative link, like huggingface_hub). */
  link(commit: string, path: string, etag: string): Promise<string>;
  /** Size of the file a snapshot path resolves to, or undefined when it is missing or dangling. */
  snapshotFileSize(commit: string, path: string): Promise<number | undefined>;
  remove(): Promise<boolean>;
}

/** The cache of one repo under a hub cache directory. */
export function repoCache(hubCacheDir: string, repo: string): RepoCache {
  const dir = join(hubCacheDir, repoFolderName(repo));
  const blobPath = (etag: string) => join(dir, "blobs", etag);
  const snapshotDir = (commit: string) => join(dir, "snapshots", commit);
  return {
    dir,
    blobPath,
    incompletePath: (etag) => `${blobPath(etag)}.incomplete`,
    snapshotDir,
    async readRef(ref) {
      const file = Bun.file(join(dir, "refs", ref));
      if (!(await file.exists())) return undefined;
      const commit = (await file.text()).trim();
      return /^[0-9a-f]{40}$/.test(commit) ? commit : undefined;
    },
    async writeRef(ref, commit) {
      await mkdir(join(dir, "refs"), { recursive: true });
      await Bun.write(join(dir, "refs", ref), commit);
    },
    async link(commit, path, etag) {
      const pointer = join(snapshotDir(commit), path);
      await mkdir(dirname(pointer), { recursive: true });
      const target = relative(dirname(pointer), blobPath(etag));
      const existing = await readlink(pointer).catch(() => undefined);
      if (existing === target) return pointer;
      if (existing !== undefined || (await exists(pointer))) await unlink(pointer);
      await symlink(target, pointer);
      return pointer;
    },
    async snapshotFileSize(commit, path) {
      return stat(join(snapshotDir(commit), path)).then(
        (s) => s.size,
        () => undefined,
      );
    },
    async remove() {
      const had = await exists(dir);
      await rm(dir, { recursive: true, force: true });
      return had;
    },
  };
}

/**
 * Runs `fn` holding `<blob>.exo-lock`, so two processes sharing a cache (a node and `exo pull`) never append
 * to the same .incomplete file. The lock holds the owner's pid; a lock whose process is gone is taken over.
 */
export async function withBlobLock<T>(blobPath: string, fn: () => Promise<T>, pollMs = 250): Promise<T> {
  const lockPath = `${blobPath}.exo-lock`;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== "EEXIST") throw err;
      const owner = Number(
        await Bun.file(lockPath)
          .text()
          .catch(() => ""),
      );
      if (!isAlive(owner)) await rm(lockPath, { force: true });
      else await Bun.sleep(pollMs); // another process is fetching this blob: wait for it to finish
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Size of a file, 0 when it does not exist. */
export async function fileSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
