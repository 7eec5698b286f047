// Content hashes of downloaded files: sha256 for LFS files, git blob sha1 for the others (what HF sends as
// ETag). Hashed on the main thread while streaming: measured with Bun 1.4.5, handing chunks to a worker
// (postMessage, even batched and transferred) cost the main thread more than hashing them itself.

/** Incremental hash of one file; `bytes` counts what was fed. */
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
