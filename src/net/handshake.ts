// The keyed handshake's cryptography (pure, no sockets): each side offers a fresh nonce and an ephemeral X25519
// key in an AUTH frame; the shared secret, mixed with the cluster key through HKDF, gives one frame key per
// direction and a confirmation key, so only holders of the cluster key can open or answer anything that follows,
// and a recorded link cannot be decrypted later even with the cluster key (forward secrecy).
import {
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from "node:crypto";
import { NodeError } from "../errors.ts";
import { PROTOCOL_VERSION } from "../version.ts";

const NONCE_BYTES = 32;
const LABEL = "exo link v1";

/** What one side sends in its AUTH frame, with the private half it keeps. */
export interface AuthOffer {
  nonce: Uint8Array;
  /** Raw X25519 public key (32 bytes). */
  publicKey: Uint8Array;
  privateKey: KeyObject;
}

export interface LinkKeys {
  /** AES-256-GCM key of the frames this side sends. */
  send: Uint8Array;
  /** AES-256-GCM key of the frames this side receives. */
  receive: Uint8Array;
  /** HMAC key of the HELLO proofs. */
  confirm: Uint8Array;
}

export type Role = "dialer" | "acceptor";

export function createAuthOffer(): AuthOffer {
  const { publicKey, privateKey } = generateKeyPairSync("x25519");
  const x = (publicKey.export({ format: "jwk" }) as { x: string }).x;
  return { nonce: randomBytes(NONCE_BYTES), publicKey: Buffer.from(x, "base64url"), privateKey };
}

/** AUTH fields on the wire: nothing about the node, only the protocol version and fresh randomness. */
export function encodeAuth(offer: AuthOffer): Record<string, unknown> {
  return {
    protocol: PROTOCOL_VERSION,
    nonce: Buffer.from(offer.nonce).toString("base64"),
    key: Buffer.from(offer.publicKey).toString("base64"),
  };
}

/** @throws NodeError E_HANDSHAKE for a malformed AUTH */
export function parseAuth(fields: Record<string, unknown>): { nonce: Uint8Array; publicKey: Uint8Array } {
  const { protocol, nonce, key } = fields;
  if (protocol !== PROTOCOL_VERSION)
    throw new NodeError("E_HANDSHAKE", `AUTH for protocol ${String(protocol)}, this node speaks ${PROTOCOL_VERSION}`);
  const bytes = (v: unknown, n: number, what: string) => {
    const b = typeof v === "string" ? Buffer.from(v, "base64") : undefined;
    if (!b || b.byteLength !== n) throw new NodeError("E_HANDSHAKE", `AUTH ${what} must be ${n} bytes of base64`);
    return new Uint8Array(b);
  };
  return { nonce: bytes(nonce, NONCE_BYTES, "nonce"), publicKey: bytes(key, 32, "key") };
}

/**
 * Keys of one link from both offers and the cluster key; both sides compute the same ones (directions swapped).
 * @throws NodeError E_HANDSHAKE when the peer's key is not a usable X25519 point
 */
export function deriveLinkKeys(
  role: Role,
  clusterKey: Uint8Array,
  mine: AuthOffer,
  theirs: { nonce: Uint8Array; publicKey: Uint8Array },
): LinkKeys {
  let shared: Uint8Array;
  try {
    const publicKey = createPublicKey({
      key: { kty: "OKP", crv: "X25519", x: Buffer.from(theirs.publicKey).toString("base64url") },
      format: "jwk",
    });
    shared = diffieHellman({ privateKey: mine.privateKey, publicKey });
  } catch (cause) {
    throw new NodeError("E_HANDSHAKE", "AUTH key is not a usable X25519 public key", { cause });
  }
  const [dialer, acceptor] = role === "dialer" ? [mine, theirs] : [theirs, mine];
  // Both nonces and both ephemeral keys, in a fixed order, with the protocol version: a replayed half of an
  // old handshake meets a fresh nonce and key from this side, so it derives other keys and cannot open anything.
  const transcript = createHash("sha256")
    .update(`${LABEL}\0${PROTOCOL_VERSION}\0`)
    .update(dialer.nonce)
    .update(dialer.publicKey)
    .update(acceptor.nonce)
    .update(acceptor.publicKey)
    .digest();
  const okm = new Uint8Array(
    hkdfSync("sha256", shared, clusterKey, Buffer.concat([Buffer.from(LABEL), transcript]), 96),
  );
  const toAcceptor = okm.subarray(0, 32);
  const toDialer = okm.subarray(32, 64);
  return role === "dialer"
    ? { send: toAcceptor, receive: toDialer, confirm: okm.subarray(64) }
    : { send: toDialer, receive: toAcceptor, confirm: okm.subarray(64) };
}

/** The proof a side puts in its sealed HELLO: it holds this link's keys, and says who it is and whom it meant. */
export function helloProof(keys: LinkKeys, role: Role, selfId: string, peerId: string): string {
  return createHmac("sha256", keys.confirm).update(`${role}\0${selfId}\0${peerId}`).digest("base64");
}

/** Constant-time check of a peer's proof. */
export function checkHelloProof(
  keys: LinkKeys,
  peerRole: Role,
  peerId: string,
  selfId: string,
  proof: unknown,
): boolean {
  if (typeof proof !== "string") return false;
  const want = Buffer.from(helloProof(keys, peerRole, peerId, selfId), "base64");
  const got = Buffer.from(proof, "base64");
  return got.byteLength === want.byteLength && timingSafeEqual(got, want);
}
