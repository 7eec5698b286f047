// Before `exo run` places a model, give the peers in the peer file a moment to link: placing on a half-formed
// cluster would give a plan without them. Peers still down after the wait are named, and the run goes on.
export interface PeerView {
  stats(): { peers: Array<{ nodeId: string; configured: boolean; up: boolean }> };
  onPeerChange(listener: (peer: string, up: boolean) => void): () => void;
}

/** Default wait for configured peers: a few health intervals of a healthy LAN. */
export const DEFAULT_PEER_WAIT_MS = 10_000;

/** Resolve with the configured peers that are still down once all are up or `timeoutMs` passed. */
export async function waitForPeers(
  view: PeerView,
  timeoutMs: number,
  write: (text: string) => void,
): Promise<string[]> {
  const down = () =>
    view
      .stats()
      .peers.filter((p) => p.configured && !p.up)
      .map((p) => p.nodeId);
  if (down().length === 0) return [];
  write(`waiting for peers: ${down().join(", ")}\n`);
  const { promise, resolve } = Promise.withResolvers<void>();
  const unsubscribe = view.onPeerChange(() => down().length === 0 && resolve());
  const timer = setTimeout(resolve, timeoutMs);
  try {
    if (down().length > 0) await promise;
  } finally {
    clearTimeout(timer);
    unsubscribe();
  }
  const missing = down();
  if (missing.length > 0) write(`continuing without ${missing.join(", ")} (not linked after ${timeoutMs} ms)\n`);
  return missing;
}
