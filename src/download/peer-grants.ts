// Which repos each peer may read from this node's cache: only those of models it is preparing. A peer says so
// in its STATUS broadcasts (phase "download" first, before it asks for any file, on the same ordered link); the
// grant ends when it moves on to loading, reports ready, or goes down.
import type { ServeGrants } from "./peer-files.ts";

export interface PeerGrants extends ServeGrants {
  /** `peer` is downloading the files of `repo` (true) or no longer (false). */
  preparing(peer: string, repo: string, downloading: boolean): void;
  /** `peer` went down: whatever it was preparing, it starts over when it comes back. */
  peerDown(peer: string): void;
}

export function createPeerGrants(): PeerGrants {
  const byPeer = new Map<string, Set<string>>();
  return {
    // Hugging Face repo ids are case-insensitive.
    allows: (peer, repo) => byPeer.get(peer)?.has(repo.toLowerCase()) ?? false,
    preparing(peer, repo, downloading) {
      const repos = byPeer.get(peer) ?? new Set<string>();
      if (downloading) repos.add(repo.toLowerCase());
      else repos.delete(repo.toLowerCase());
      if (repos.size > 0) byPeer.set(peer, repos);
      else byPeer.delete(peer);
    },
    peerDown(peer) {
      byPeer.delete(peer);
    },
  };
}

/** Every repo to every peer: for benchmarks and tests of the transfer itself, never a node's default. */
export const GRANT_ALL: ServeGrants = { allows: () => true };
