// `exo run` waits for the peers of its peer file before placing the model, but not forever.
import { describe, expect, test } from "bun:test";
import { waitForPeers, type PeerView } from "../../../src/cli/wait-peers.ts";

function fakeView(initial: Record<string, boolean>) {
  const up = new Map(Object.entries(initial));
  const listeners = new Set<(peer: string, up: boolean) => void>();
  const view: PeerView = {
    stats: () => ({ peers: [...up].map(([nodeId, isUp]) => ({ nodeId, configured: true, up: isUp })) }),
    onPeerChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  const set = (peer: string, isUp: boolean) => {
    up.set(peer, isUp);
    for (const l of listeners) l(peer, isUp);
  };
  return { view, set, listeners };
}

describe("waitForPeers", () => {
  test("returns at once when every configured peer is linked", async () => {
    const { view } = fakeView({ b: true });
    const out: string[] = [];
    expect(await waitForPeers(view, 60_000, (t) => out.push(t))).toEqual([]);
    expect(out).toEqual([]);
  });

  test("waits until the last peer comes up, then stops listening", async () => {
    const f = fakeView({ b: false, c: false });
    const out: string[] = [];
    const waiting = waitForPeers(f.view, 60_000, (t) => out.push(t));
    f.set("b", true);
    f.set("c", true);
    expect(await waiting).toEqual([]);
    expect(out).toEqual(["waiting for peers: b, c\n"]);
    expect(f.listeners.size).toBe(0);
  });

  test("gives up after the timeout and names the peers still down", async () => {
    const f = fakeView({ b: true, c: false });
    const out: string[] = [];
    expect(await waitForPeers(f.view, 30, (t) => out.push(t))).toEqual(["c"]);
    expect(out.at(-1)).toBe("continuing without c (not linked after 30 ms)\n");
  });
});
