// The keyed handshake's key schedule: both sides agree only when they hold the same cluster key, each direction
// has its own key, every handshake gives fresh keys, and the HELLO proofs bind both node ids.
import { describe, expect, test } from "bun:test";
import {
  checkHelloProof,
  createAuthOffer,
  deriveLinkKeys,
  encodeAuth,
  helloProof,
  parseAuth,
} from "../../../src/net/handshake.ts";

const K = new TextEncoder().encode("k".repeat(43));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function handshake(dialerKey: Uint8Array, acceptorKey: Uint8Array) {
  const d = createAuthOffer();
  const a = createAuthOffer();
  const dialer = deriveLinkKeys("dialer", dialerKey, d, parseAuth(encodeAuth(a)));
  const acceptor = deriveLinkKeys("acceptor", acceptorKey, a, parseAuth(encodeAuth(d)));
  return { dialer, acceptor };
}

describe("keyed handshake", () => {
  test("the same cluster key gives matching keys, one per direction", () => {
    const { dialer, acceptor } = handshake(K, K);
    expect(hex(dialer.send)).toBe(hex(acceptor.receive));
    expect(hex(dialer.receive)).toBe(hex(acceptor.send));
    expect(hex(dialer.send)).not.toBe(hex(dialer.receive));
    expect(hex(dialer.confirm)).toBe(hex(acceptor.confirm));
  });

  test("another cluster key gives other keys; every handshake gives fresh ones", () => {
    const other = new TextEncoder().encode("x".repeat(43));
    const differ = handshake(K, other);
    expect(hex(differ.dialer.send)).not.toBe(hex(differ.acceptor.receive));
    expect(hex(handshake(K, K).dialer.send)).not.toBe(hex(handshake(K, K).dialer.send));
  });

  test("AUTH carries only the protocol, a nonce and an ephemeral key", () => {
    const fields = encodeAuth(createAuthOffer());
    expect(Object.keys(fields).sort()).toEqual(["key", "nonce", "protocol"]);
    expect(() => parseAuth({ ...fields, nonce: "short" })).toThrow("nonce");
    expect(() => parseAuth({ ...fields, protocol: 2 })).toThrow("protocol 2");
  });

  test("a HELLO proof checks only for the same link, roles and node ids", () => {
    const { dialer, acceptor } = handshake(K, K);
    const proof = helloProof(dialer, "dialer", "b", "a");
    expect(checkHelloProof(acceptor, "dialer", "b", "a", proof)).toBe(true);
    expect(checkHelloProof(acceptor, "dialer", "c", "a", proof)).toBe(false);
    expect(checkHelloProof(acceptor, "dialer", "b", "x", proof)).toBe(false);
    expect(checkHelloProof(acceptor, "acceptor", "b", "a", proof)).toBe(false);
    expect(checkHelloProof(handshake(K, K).acceptor, "dialer", "b", "a", proof)).toBe(false);
    expect(checkHelloProof(acceptor, "dialer", "b", "a", undefined)).toBe(false);
  });
});
