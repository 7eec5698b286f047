// The message table of the wire protocol (DESIGN §5) and the plain data types frames carry.
// Pure data: no I/O. The codec (frame.ts) turns these into bytes and back.

/** Message type byte → name. Add new types at the end, with a codec test. */
export const MESSAGE_TYPES = {
  HELLO: 1,
  HEALTH: 2,
  HEALTH_OK: 3,
  TOPOLOGY_REQ: 4,
  TOPOLOGY: 5,
  PREPARE: 6,
  STATUS: 7,
  PROMPT: 8,
  TENSOR: 9,
  TOKEN: 10,
  END: 11,
  ERROR: 12,
  /** Generic positive answer to a request that has nothing else to return (e.g. END, PREPARE done). */
  OK: 13,
  /** Keyed handshake: a fresh nonce and ephemeral X25519 key each way, before anything else (src/net/handshake.ts). */
  AUTH: 14,
  /** An AEAD-sealed frame: after a keyed handshake every frame travels inside one (seal.ts). */
  SEALED: 15,
  /** Free a model's shard on the receiving node (`exo stop`); answered with OK `{unloaded}`. */
  UNLOAD: 16,
  /** Which verified blob of a repo's HF cache this peer holds: request `repo`, `etag` → `size` (src/download/peer-files.ts). */
  BLOB_HAVE: 17,
  /** A byte range of a verified blob: request `repo`, `etag`, `offset`, `length` → the bytes as body. */
  BLOB_READ: 18,
  /** The files of a repo's cached snapshot: request `repo` → `commit`, `files` [{path, etag, size}]. */
  REPO_FILES: 19,
} as const;

export type MessageTypeName = keyof typeof MESSAGE_TYPES;

/** Element types a TENSOR body may hold; bytes are little-endian. */
export const DTYPE_BYTES = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int32: 4,
  uint32: 4,
  int8: 1,
  uint8: 1,
} as const;
export type DType = keyof typeof DTYPE_BYTES;

/** A tensor crossing a process boundary: dtype + shape + raw little-endian bytes. */
export interface Tensor {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

/**
 * One decoded frame. `fields` is the JSON part; `body` the raw binary tail (empty when none).
 * Requests that expect an answer carry `fields.id` (unique per connection); the answer echoes it.
 */
export interface Message {
  type: MessageTypeName;
  fields: Record<string, unknown>;
  body: Uint8Array;
}
