// PeerPool over real loopback sockets in one process: handshake, reuse, multiplexing, deadlines, faults.
import { asNodeId } from "../../../src/ids.ts";
import { afterEach, describe, expect, test } from "bun:test";
import { NodeError, isNodeError } from "../../../src/errors.ts";
import type { Hello } from "../../../src/net/hello.ts";
import { PeerPool, type PeerAddress } from "../../../src/net/peer-pool.ts";
import { openProbe } from "../../../src/net/probe.ts";
import { listenTcp, type TcpServer } from "../../../src/net/sockets.ts";
import { encodeFrame } from "../../../src/protocol/frame.ts";
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

function startNode(nodeId: string, over: Partial<Hello> = {}, timeouts: { request?: number } = {}): TestNode {
  let port = 0;
  const pool = new PeerPool({
    selfId: nodeId,
    hello: () => ({ nodeId, protocol: PROTOCOL_VERSION, version: VERSION, port, ...over }),
    requestTimeoutMs: timeouts.request ?? 5000,
    healthTimeoutMs: 1000,
    dialTimeoutMs: 1000,
    handshakeTimeoutMs: 1000,
    maxFrameBytes: 64 * 1024 * 1024,
    backoffMinMs: 20,
    backoffMaxMs: 200,
  });
  const server = listenTcp("127.0.0.1", 0, (s) => pool.accept(s));
  port = server.port;
  const node = { pool, server, addr: { nodeId, address: "127.0.0.1", port } };
  started.push(node);
  return node;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return isNodeError(err) ? err.code : String(err);
  }
}

function pair(): [TestNode, TestNode] {
  const a = startNode("a");
  const b = startNode("b");
  a.pool.setPeers([a.addr, b.addr]);
  b.pool.setPeers([a.addr, b.addr]);
  return [a, b];
}

describe("PeerPool", () => {
  test("two nodes link both ways with one dial each, and repeated calls reuse the same connection", async () => {
    const [a, b] = pair();
    await waitFor(() => a.pool.stats().peers[0]?.outbound && b.pool.stats().peers[0]?.outbound, {
      what: "both outbound links",
    });
    const before = a.pool.stats().peers[0]!.outbound!;
    for (let i = 0; i < 10; i++) expect((await a.pool.request("b", "HEALTH")).type).toBe("HEALTH_OK");
    for (let i = 0; i < 10; i++) expect((await b.pool.request("a", "HEALTH")).type).toBe("HEALTH_OK");
    const after = a.pool.stats().peers[0]!;
    expect(after.dials).toBe(1);
    expect(after.outbound!.connectionId).toBe(before.connectionId);
    expect(after.outbound!.localPort).toBe(before.localPort);
    expect(after.outbound!.requestsSent).toBe(10);
    expect<string[]>(a.pool.peersUp()).toEqual(["b"]);
    expect<string[]>(b.pool.peersUp()).toEqual(["a"]);
    expect(a.pool.helloOf("b")?.port).toBe(b.addr.port);
  });

  test("a thousand concurrent requests on one link are each answered with their own data", async () => {
    const [a, b] = pair();
    b.pool.handle("PROMPT", async (msg) => {
      await Bun.sleep(Number(msg.fields.n) % 7);
      return { type: "OK", fields: { n: msg.fields.n }, body: msg.body };
    });
    await waitFor(() => a.pool.peersUp().length === 1, { what: "a sees b" });
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, n) => a.pool.request("b", "PROMPT", { n }, Uint8Array.of(n & 255))),
    );
    answers.forEach((m, n) => {
      expect(m.fields.n).toBe(n);
      expect([...m.body]).toEqual([n & 255]);
    });
    expect(a.pool.stats().peers[0]!.dials).toBe(1);
  });

  test("an inbound link carries requests in both directions when only one side can dial", async () => {
    const a = startNode("a");
    const b = startNode("b");
    a.pool.setPeers([b.addr]);
    b.pool.setPeers([{ nodeId: "a", address: "127.0.0.1", port: 1 }]); // b cannot reach a
    await waitFor(() => b.pool.peersUp().includes(asNodeId("a")), { what: "b sees a through a's link" });
    expect((await b.pool.request("a", "HEALTH")).type).toBe("HEALTH_OK");
    expect((await a.pool.request("b", "HEALTH")).type).toBe("HEALTH_OK");
    const seenByB = b.pool.stats().peers.find((p) => p.nodeId === "a")!;
    expect(seenByB.outbound).toBeUndefined();
    expect(seenByB.inbound.length).toBe(1);
  });

  test("an ERROR answer rejects with the remote code, and a silent peer hits the deadline", async () => {
    const [a, b] = pair();
    b.pool.handle("PREPARE", () => {
      throw new NodeError("E_MODEL_UNKNOWN", "no such model");
    });
    b.pool.handle("PROMPT", () => new Promise(() => {}));
    await waitFor(() => a.pool.peersUp().length === 1, { what: "link" });
    expect(await codeOf(a.pool.request("b", "PREPARE"))).toBe("E_MODEL_UNKNOWN");
    expect(await codeOf(a.pool.request("b", "PROMPT", {}, undefined, { timeoutMs: 50 }))).toBe("E_PEER_TIMEOUT");
    expect(await codeOf(a.pool.request("b", "STATUS"))).toBe("E_PROTOCOL_TYPE");
    expect(await codeOf(a.pool.request("nobody", "HEALTH"))).toBe("E_PEER_UNKNOWN");
  });

  test("a build version mismatch is refused and neither side counts the other as up", async () => {
    const a = startNode("a");
    const b = startNode("b", { version: "9.9.9" });
    a.pool.setPeers([b.addr]);
    await waitFor(() => a.pool.stats().peers[0]!.dialFailures >= 1 && b.pool.stats().refused >= 1, {
      what: "refusal on both sides",
    });
    expect(a.pool.peersUp()).toEqual([]);
    expect(b.pool.peersUp()).toEqual([]);
    expect(a.pool.stats().peers[0]!.lastDialError).toMatch(
      /refused the handshake: node a runs exo .+, node b runs exo 9.9.9: run the same build/,
    );
  });

  test("a node that is not in the peer file is refused, and removing a peer drops its links", async () => {
    const [a, b] = pair();
    const c = startNode("c");
    c.pool.setPeers([a.addr]);
    await waitFor(() => a.pool.peersUp().includes(asNodeId("b")) && c.pool.stats().peers[0]!.dialFailures >= 1, {
      what: "c refused",
    });
    expect<string[]>(a.pool.peersUp()).toEqual(["b"]);
    const changes: string[] = [];
    a.pool.onPeerChange((peer, up) => changes.push(`${peer}:${up}`));
    a.pool.setPeers([a.addr]);
    await waitFor(() => a.pool.peersUp().length === 0 && b.pool.peersUp().length === 0, { what: "a and b apart" });
    expect(changes).toEqual(["b:false"]);
  });

  test("a peer whose address changes in the peer file is re-dialled at the new address", async () => {
    const a = startNode("a");
    const oldB = startNode("b");
    a.pool.setPeers([oldB.addr]);
    await waitFor(() => a.pool.stats().peers[0]?.outbound?.remotePort === oldB.addr.port, {
      what: "link to the old address",
    });
    const newB = startNode("b");
    a.pool.setPeers([newB.addr]);
    await waitFor(() => a.pool.stats().peers[0]?.outbound?.remotePort === newB.addr.port, {
      what: "link to the new address",
    });
    expect(a.pool.stats().peers[0]!.address).toBe(`127.0.0.1:${newB.addr.port}`);
  });

  test("a closed link fails its requests in flight with E_PEER_DOWN and is re-dialled", async () => {
    const [a, b] = pair();
    b.pool.handle("PROMPT", () => new Promise(() => {}));
    await waitFor(() => a.pool.stats().peers[0]?.outbound, { what: "link" });
    const inFlight = a.pool.request("b", "PROMPT");
    b.pool.disconnect("a", "test: b drops a"); // a sees a real failure
    expect(await codeOf(inFlight)).toBe("E_PEER_DOWN");
    await waitFor(() => a.pool.stats().peers[0]!.dials === 2 && a.pool.peersUp().includes(asNodeId("b")), {
      what: "redial",
    });
  });

  test("sending to itself reaches its own handler without a socket", async () => {
    const a = startNode("a");
    const got: string[] = [];
    a.pool.handle("TOKEN", (msg, from) => void got.push(`${from}:${msg.fields.t}`));
    await a.pool.send("a", "TOKEN", { t: 1 });
    await waitFor(() => got.length === 1, { what: "local delivery" });
    expect(got).toEqual(["a:1"]);
    expect((await a.pool.request("a", "HEALTH")).type).toBe("HEALTH_OK");
  });

  test("a 16 MiB frame crosses intact despite partial socket writes", async () => {
    const [a, b] = pair();
    let received: Uint8Array | undefined;
    b.pool.handle("TENSOR", (msg) => void (received = msg.body));
    await waitFor(() => a.pool.peersUp().length === 1, { what: "link" });
    const words = new Uint32Array(4 * 1024 * 1024);
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i, 2654435761);
    const bytes = new Uint8Array(words.buffer);
    await a.pool.send("b", "TENSOR", { dtype: "uint8", shape: [bytes.length] }, bytes);
    await waitFor(() => received, { what: "tensor at b" });
    expect(received!.length).toBe(bytes.length);
    expect(Bun.hash(received!)).toBe(Bun.hash(bytes));
  });

  test("large bodies sent without a copy arrive whole and in order between small frames sent meanwhile", async () => {
    const [a, b] = pair();
    const seen: string[] = [];
    b.pool.handle("TENSOR", (msg) => void seen.push(`T${msg.fields.n}:${Bun.hash(msg.body)}`));
    b.pool.handle("TOKEN", (msg) => void seen.push(`k${msg.fields.n}`));
    await waitFor(() => a.pool.peersUp().length === 1, { what: "link" });
    const expected: string[] = [];
    const sends: Promise<void>[] = [];
    for (let n = 0; n < 8; n++) {
      const body = new Uint8Array(512 * 1024 + n).fill(n + 1);
      expected.push(`T${n}:${Bun.hash(body)}`, `k${n}`);
      sends.push(a.pool.send("b", "TENSOR", { n, dtype: "uint8", shape: [body.length] }, body));
      sends.push(a.pool.send("b", "TOKEN", { n }));
    }
    await Promise.all(sends);
    await waitFor(() => seen.length === expected.length, { what: "every frame at b" });
    expect(seen).toEqual(expected);
  });

  test("a probe is served HEALTH and TOPOLOGY_REQ only, and never counted as a peer", async () => {
    const [a] = pair();
    a.pool.handle("PREPARE", () => ({ type: "OK" }));
    const probe = await openProbe("127.0.0.1", a.addr.port, { probeId: "doctor@test", expect: "a", timeoutMs: 1000 });
    try {
      expect((await probe.request("HEALTH", {}, undefined, 1000)).type).toBe("HEALTH_OK");
      expect(await codeOf(probe.request("PREPARE", {}, undefined, 1000))).toBe("E_HANDSHAKE");
      expect(a.pool.peersUp()).not.toContain("doctor@test");
      expect(a.pool.stats().probes).toBe(1);
    } finally {
      probe.close("test done");
    }
    expect(
      await codeOf(openProbe("127.0.0.1", a.addr.port, { probeId: "doctor@test", expect: "zz", timeoutMs: 1000 })),
    ).toBe("E_HANDSHAKE");
  });

  test("garbage on a connection closes only that connection", async () => {
    const [a, b] = pair();
    await waitFor(() => a.pool.peersUp().length === 1, { what: "link" });
    const closed = Promise.withResolvers<void>();
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port: b.addr.port,
      socket: { data() {}, close: () => closed.resolve() },
    });
    const hello = encodeFrame({ type: "HELLO", fields: { node_id: "x" } });
    hello[3] = 7;
    sock.write(hello);
    await closed.promise;
    expect((await a.pool.request("b", "HEALTH")).type).toBe("HEALTH_OK");
  });
});
