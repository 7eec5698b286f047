// A peer entry that points at this very node (its own address and listen port, under another id): dialling it would
// only reach ourselves and fail the handshake every backoff. Pure: the entries and this node's addresses in, the
// entries split into real peers and self-addressed ones out.
import type { PeerSpec } from "./peer-file.ts";

/** Names that reach this machine whatever its interfaces are. */
const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1", "0.0.0.0", "::"]);

/** This node as peers would address it: its listen port and every address of this machine. */
export interface OwnAddress {
  port: number;
  /** Addresses of this machine's interfaces (os.networkInterfaces()) and the --host it binds. */
  addresses: readonly string[];
}

export function splitSelfAddressed(
  peers: readonly PeerSpec[],
  own: OwnAddress,
): { peers: PeerSpec[]; self: PeerSpec[] } {
  const mine = new Set([...own.addresses].map((a) => a.toLowerCase()));
  const isSelf = (p: PeerSpec) =>
    p.port === own.port && (LOOPBACK.has(p.address.toLowerCase()) || mine.has(p.address.toLowerCase()));
  return { peers: peers.filter((p) => !isSelf(p)), self: peers.filter(isSelf) };
}
