// Links with a cluster key, over real loopback sockets in one process: sealed both ways, a different (or no)
// key refused as `cluster keys differ` on both sides, a new key re-establishing every link, and keyless
// admission by the address the peer file gives a node id.
import { afterEach, describe, expect, test } from "bun:test";
import { resolveAdmittedAddresses } from "../../../src/net/admission.ts";
import { PeerPool, type PeerAddress } from "../../../src/net/peer-pool.ts";
import { openProbe } from "../../../src/net/probe.ts";
import { listenTcp, type TcpServer } from "../../../src/net/sockets.ts";
import { PROTOCOL_VERSION, VERSION } from "../../../src/version.ts";
import { waitFor } from "../../helpers/wait.ts";

interface TestNode {
  pool: PeerPool;
  server: TcpServer;
  addr: PeerAddress;
}
const started: TestNode[] = [];
afterEach(() => {
  for (const n of started.splice(0)) {
    n.pool.stop();
    n.server.stop();
  }
});
const key = (c: string) => new TextEncoder().encode(c.repeat(40));

function startNode(nodeId: string, clusterKey?: Uint8Array): TestNode {
  let port = 0;
  const pool = new PeerPool({
    selfId: nodeId,
    hello: () => ({ nodeId, protocol: PROTOCOL_VERSION, version: VERSION, port }),
    requestTimeoutMs: 5000,
    healthTimeoutMs: 1000,
    dialTimeoutMs: 1000,
    handshakeTimeoutMs: 1000,
    maxFrameBytes: 64 * 1024 * 1024,
    backoffMinMs: 20,
    backoffMaxMs: 200,
    clusterKey,
  });
  const server = listenTcp("127.0.0.1", 0, (s) => pool.accept(s));
  port = server.port;
  const node = { pool, server, addr: { nodeId, address: "127.0.0.1", port } };
  started.push(node);
  return node;
}
function pair(ka?: Uint8Array, kb?: Uint8Array): [TestNode, TestNode] {
  const a = startNode("a", ka);
  const b = startNode("b", kb);
  a.pool.setPeers([a.addr, b.addr]);
  b.pool.setPeers([a.addr, b.addr]);
  return [a, b];
}
const peerOf = (n: TestNode) => n.pool.stats().peers[0];

describe("keyed links", () => {
  test("link up with the same key: requests and a 16 MiB tensor cross sealed links both ways", async () => {
    const [a, b] = pair(key("k"), key("k"));
    await waitFor(() => peerOf(a)?.outbound && peerOf(b)?.outbound, { what: "both outbound links" });
    let got: Uint8Array | undefined;
    b.pool.handle("TENSOR", (msg) => void (got = msg.body));
    const body = new Uint8Array(16 * 1024 * 1024).map((_, i) => i % 251);
    await a.pool.send("b", "TENSOR", { dtype: "uint8", shape: [body.length] }, body);
    expect((await a.pool.request("b", "HEALTH")).type).toBe("HEALTH_OK");
    expect((await b.pool.request("a", "HEALTH")).type).toBe("HEALTH_OK");
    await waitFor(() => got, { what: "the tensor at b" });
    expect(Buffer.from(got!).equals(Buffer.from(body))).toBe(true);
    const probe = await openProbe("127.0.0.1", b.addr.port, { probeId: "t", timeoutMs: 1000, clusterKey: key("k") });
    expect(probe.sealed).toBe(true);
    probe.close("done");
  });

  test("another key, or none on one side, is refused as `cluster keys differ` with the fix, both ways", async () => {
    for (const [ka, kb] of [
      [key("k"), key("x")],
      [key("k"), undefined],
      [undefined, key("k")],
    ] as const) {
      const [a, b] = pair(ka, kb);
      await waitFor(() => peerOf(a)?.lastDialError && peerOf(b)?.lastDialError, { what: "both dials refused" });
      for (const n of [a, b]) {
        expect(peerOf(n)!.lastDialError).toContain("cluster keys differ");
        expect(peerOf(n)!.lastDialError).toContain("exo keygen");
        expect(n.pool.peersUp()).toEqual([]);
      }
      const probe = openProbe("127.0.0.1", b.addr.port, { probeId: "t", timeoutMs: 1000, clusterKey: ka });
      await expect(probe).rejects.toThrow("cluster keys differ");
      for (const n of started.splice(0)) n.pool.stop(), n.server.stop();
    }
  });

  test("a new key on both sides re-establishes every link with it; on one side only, the peer goes down", async () => {
    const [a, b] = pair(key("k"), key("k"));
    await waitFor(() => peerOf(a)?.outbound && peerOf(b)?.outbound, { what: "both outbound links" });
    const before = peerOf(a)!.outbound!.connectionId;
    a.pool.setClusterKey(key("n"));
    await waitFor(() => peerOf(a)?.lastDialError?.includes("cluster keys differ"), { what: "a refused by b" });
    expect(a.pool.peersUp()).toEqual([]);
    b.pool.setClusterKey(key("n"));
    await waitFor(() => peerOf(a)?.outbound && peerOf(b)?.outbound, { what: "links again", timeoutMs: 5000 });
    expect(peerOf(a)!.outbound!.connectionId).not.toBe(before);
    expect((await a.pool.request("b", "HEALTH")).type).toBe("HEALTH_OK");
  });

  test("without a key a listed id may link in only from the address the peer file gives it", async () => {
    const [a, b] = pair();
    a.pool.setAdmittedAddresses(await resolveAdmittedAddresses([{ ...b.addr, address: "10.9.9.9" }]));
    await waitFor(() => peerOf(b)?.lastDialError, { what: "b refused by a" });
    expect(peerOf(b)!.lastDialError).toContain("node b linked in from 127.0.0.1, not from its address");
    a.pool.setAdmittedAddresses(await resolveAdmittedAddresses([{ ...b.addr, address: "localhost" }]));
    await waitFor(() => peerOf(b)?.outbound, { what: "b admitted from loopback", timeoutMs: 5000 });
  });
});
