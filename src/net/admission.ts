// Keyless links: who may link in is decided by where the connection comes from. Each node id may come only
// from the addresses the peer file gives it (host names resolved); a probe from any address the file names.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Hello } from "./hello.ts";
import type { PeerAddress } from "./peer-pool.ts";

/** Addresses each node id may link in from; `any` holds every one of them (for probes). */
export interface AdmittedAddresses {
  byNode: ReadonlyMap<string, ReadonlySet<string>>;
  any: ReadonlySet<string>;
}

const LOOPBACK = ["127.0.0.1", "::1"];

/** One spelling per address: IPv4-mapped IPv6 (::ffff:1.2.3.4) as IPv4, lower case. */
export function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith("::ffff:") && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** The addresses a peer-file entry stands for: itself when it is an IP, else what the host name resolves to. */
async function addressesOf(address: string): Promise<string[]> {
  if (isIP(address)) return [normalizeAddress(address)];
  try {
    return (await lookup(address, { all: true })).map((r) => normalizeAddress(r.address));
  } catch {
    return []; // an unresolvable name admits nobody; the dial to it fails and logs why
  }
}

/** Resolve every entry; a loopback entry (a tunnelled peer) admits both loopback spellings, and only them. */
export async function resolveAdmittedAddresses(peers: readonly PeerAddress[]): Promise<AdmittedAddresses> {
  const byNode = new Map<string, Set<string>>();
  const any = new Set<string>();
  for (const p of peers) {
    const set = byNode.get(p.nodeId) ?? new Set<string>();
    for (const a of await addressesOf(p.address)) {
      for (const x of LOOPBACK.includes(a) ? LOOPBACK : [a]) {
        set.add(x);
        any.add(x);
      }
    }
    byNode.set(p.nodeId, set);
  }
  return { byNode, any };
}

/** Why a keyless HELLO from `from` is refused, or undefined when the peer file names that address for it. */
export function addressRefusal(
  admitted: AdmittedAddresses,
  peer: Hello,
  from: string,
  selfId: string,
): string | undefined {
  const address = normalizeAddress(from);
  const allowed = peer.probe ? admitted.any : admitted.byNode.get(peer.nodeId);
  if (allowed?.has(address)) return undefined;
  return peer.probe
    ? `a probe from ${address}, an address node ${selfId}'s peer file does not name (links have no cluster key)`
    : `node ${peer.nodeId} linked in from ${address}, not from its address in node ${selfId}'s peer file (links have no cluster key)`;
}
