// The PeerTransport contract run against the TCP PeerPool (loopback) and the in-memory network.
import { asNodeId } from "../../../src/ids.ts";
import { PeerPool } from "../../../src/net/peer-pool.ts";
import { listenTcp } from "../../../src/net/sockets.ts";
import { PROTOCOL_VERSION, VERSION } from "../../../src/version.ts";
import { createMemoryNetwork } from "../../helpers/memory-transport.ts";
import { runTransportContract } from "../../helpers/transport-contract.ts";
import { waitFor } from "../../helpers/wait.ts";

function tcpNode(id: string) {
  let port = 0;
  const pool = new PeerPool({
    selfId: id,
    hello: () => ({ nodeId: id, protocol: PROTOCOL_VERSION, version: VERSION, port }),
    requestTimeoutMs: 5000,
    healthTimeoutMs: 1000,
    dialTimeoutMs: 1000,
    handshakeTimeoutMs: 1000,
    maxFrameBytes: 1 << 20,
    backoffMinMs: 20,
    backoffMaxMs: 200,
  });
  const server = listenTcp("127.0.0.1", 0, (s) => pool.accept(s));
  port = server.port;
  return { pool, server, addr: { nodeId: id, address: "127.0.0.1", port } };
}

runTransportContract("TCP PeerPool", async () => {
  const a = tcpNode("a");
  const b = tcpNode("b");
  a.pool.setPeers([b.addr]);
  b.pool.setPeers([a.addr]);
  await waitFor(() => a.pool.peersUp().includes(asNodeId("b")) && b.pool.peersUp().includes(asNodeId("a")), {
    what: "a and b linked",
  });
  const stop = (n: typeof a) => (n.pool.stop(), n.server.stop());
  return { a: a.pool, b: b.pool, killB: () => stop(b), close: () => (stop(a), stop(b)) };
});

runTransportContract("in-memory network", async () => {
  const net = createMemoryNetwork();
  const a = net.add("a");
  const b = net.add("b");
  return { a, b, killB: () => net.kill("b"), close: () => {} };
});
