// Topology across hops (src/net/topology-service.ts) over in-process pools on loopback: a line a - b - c
// gives every node the same graph, and visited/max_depth bound the collection.
import { asNodeId } from "../../../src/ids.ts";
import { afterEach, expect, test } from "bun:test";
import { PeerPool, type PeerAddress } from "../../../src/net/peer-pool.ts";
import { listenTcp, type TcpServer } from "../../../src/net/sockets.ts";
import { createTopologyService, type TopologyService } from "../../../src/net/topology-service.ts";
import { topologyToJson } from "../../../src/topology/graph.ts";
import { PROTOCOL_VERSION, VERSION } from "../../../src/version.ts";
import { waitFor } from "../../helpers/wait.ts";

interface N {
  pool: PeerPool;
  server: TcpServer;
  topo: TopologyService;
  addr: PeerAddress;
}
const nodes: N[] = [];
afterEach(() => {
  for (const n of nodes.splice(0)) {
    n.topo.stop();
    n.pool.stop();
    n.server.stop();
  }
});

function node(id: string, memory: number): N {
  let port = 0;
  const capabilities = { model: "Test", chip: `chip-${id}`, memory, flops: { fp32: 1, fp16: 2, int8: 4 } };
  const pool = new PeerPool({
    selfId: id,
    hello: () => ({ nodeId: id, protocol: PROTOCOL_VERSION, version: VERSION, port, capabilities }),
    requestTimeoutMs: 2000,
    healthTimeoutMs: 1000,
    dialTimeoutMs: 1000,
    handshakeTimeoutMs: 1000,
    maxFrameBytes: 1 << 20,
    backoffMinMs: 20,
    backoffMaxMs: 200,
  });
  const server = listenTcp("127.0.0.1", 0, (s) => pool.accept(s));
  port = server.port;
  const topo = createTopologyService({
    pool,
    capabilities,
    configuredCapabilities: () => undefined,
    maxDepth: 4,
    timeoutMs: 1000,
    refreshIntervalMs: 60_000,
  });
  const n = { pool, server, topo, addr: { nodeId: id, address: "127.0.0.1", port } };
  nodes.push(n);
  return n;
}

test("nodes of a line a - b - c all collect the same three-node graph, including links two hops away", async () => {
  const [a, b, c] = [node("a", 100), node("b", 200), node("c", 300)];
  a.pool.setPeers([b.addr]);
  b.pool.setPeers([a.addr, c.addr]);
  c.pool.setPeers([b.addr]);
  await waitFor(() => b.pool.peersUp().length === 2 && a.pool.peersUp().length === 1 && c.pool.peersUp().length === 1, {
    what: "line formed",
  });
  const views = await Promise.all([a, b, c].map((n) => n.topo.refresh()));
  const json = views.map((v) => JSON.stringify(topologyToJson(v)));
  expect(json[1]).toBe(json[0]!);
  expect(json[2]).toBe(json[0]!);
  expect([...views[0]!.nodes.keys()]).toEqual(["a", "b", "c"]);
  expect(views[0]!.nodes.get("c")!.memory).toBe(300);
  expect(views[0]!.links.map((l) => `${l.fromId}>${l.toId}:${l.description}`)).toEqual([
    "a>b:MAN",
    "b>a:MAN",
    "b>c:MAN",
    "c>b:MAN",
  ]);
  expect(a.topo.current()).toBe(views[0]!);
});

test("TOPOLOGY_REQ honours max_depth and visited", async () => {
  const [a, b, c] = [node("a", 1), node("b", 1), node("c", 1)];
  a.pool.setPeers([b.addr]);
  b.pool.setPeers([a.addr, c.addr]);
  c.pool.setPeers([b.addr]);
  await waitFor(() => b.pool.peersUp().length === 2 && a.pool.peersUp().length === 1, { what: "line formed" });
  const links = async (fields: Record<string, unknown>) => {
    const answer = await a.pool.request("b", "TOPOLOGY_REQ", fields);
    const graph = (answer.fields.topology as { peer_graph: Record<string, { from_id: string; to_id: string }[]> })
      .peer_graph;
    return Object.values(graph)
      .flat()
      .map((l) => `${l.from_id}>${l.to_id}`)
      .sort()
      .join(" ");
  };
  expect(await links({ visited: [], max_depth: 0 })).toBe("b>a b>c"); // b's own links only
  expect(await links({ visited: [], max_depth: 1 })).toBe("a>b b>a b>c c>b");
  expect(await links({ visited: ["c"], max_depth: 4 })).toBe("a>b b>a b>c"); // c was visited: not asked again
});

test("a node without a peer file admits a dialling node and labels that link IN; peer-file links are MAN", async () => {
  const [a, b] = [node("a", 1), node("b", 1)];
  a.pool.setPeers([b.addr]);
  b.pool.setPeers(undefined);
  await waitFor(() => b.pool.peersUp().includes(asNodeId("a")), { what: "a linked into b" });
  const t = await b.topo.refresh();
  expect(t.links.map((l) => `${l.fromId}>${l.toId}:${l.description}`)).toEqual(["a>b:MAN", "b>a:IN"]);
});
