// The cluster key: who may join the cluster. Text (any printable string of 32+ characters; `exo keygen` makes
// 256 random bits as base64url), from --cluster-key-file, else EXO_CLUSTER_KEY, else the peer file's cluster_key.
import { randomBytes } from "node:crypto";
import { NodeError } from "../errors.ts";

/** Shorter keys are refused: the key is the only secret that keeps strangers out. */
export const MIN_KEY_CHARS = 32;

export interface ClusterKey {
  /** Key material for the handshake (the UTF-8 bytes of the text). */
  readonly bytes: Uint8Array;
  /** Where it came from, for messages (never the key itself). */
  readonly source: string;
}

/** A fresh key: 32 random bytes as base64url (43 characters, safe in YAML, JSON and shells). */
export function generateClusterKey(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Check a key's text. @throws NodeError E_CONFIG_INVALID naming the source (never echoing the key)
 */
export function parseClusterKey(text: string, source: string): ClusterKey {
  const key = text.trim();
  if (key.length < MIN_KEY_CHARS || /\s/.test(key)) {
    throw new NodeError(
      "E_CONFIG_INVALID",
      `${source}: a cluster key needs at least ${MIN_KEY_CHARS} characters and no spaces (got ${key.length}); \`exo keygen\` prints one`,
    );
  }
  return Object.freeze({ bytes: new TextEncoder().encode(key), source });
}

/** Where a node's key may come from, highest precedence first. */
export interface ClusterKeySources {
  /** --cluster-key-file PATH */
  keyFile?: string;
  /** EXO_CLUSTER_KEY */
  env?: string;
  /** The peer file's cluster_key, and the file's name. */
  peerFile?: { key?: string; fileName: string };
}

/**
 * The key in force, or undefined (keyless links).
 * @throws NodeError E_CONFIG_READ for an unreadable key file, E_CONFIG_INVALID for a bad key
 */
export async function loadClusterKey(s: ClusterKeySources): Promise<ClusterKey | undefined> {
  if (s.keyFile) {
    let text: string;
    try {
      text = await Bun.file(s.keyFile).text();
    } catch (err) {
      throw new NodeError("E_CONFIG_READ", `--cluster-key-file ${s.keyFile}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return parseClusterKey(text, `--cluster-key-file ${s.keyFile}`);
  }
  if (s.env) return parseClusterKey(s.env, "EXO_CLUSTER_KEY");
  if (s.peerFile?.key !== undefined) return parseClusterKey(s.peerFile.key, `${s.peerFile.fileName}: cluster_key`);
  return undefined;
}
