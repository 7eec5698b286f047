// Peer links on loopback, side by side with raw Bun TCP in the same run, plain (keyless) and sealed (cluster
// key: AES-256-GCM frames) links measured in alternating rounds: HEALTH round trip (median, p99) vs a raw 1-byte
// ping-pong; 16 MiB TENSOR frames through a plain and a sealed link vs the same bytes over a raw socket; the
// handshake (connect to ready) plain vs keyed; 1,000 concurrent requests on one link; topology collection over
// 2 and 8 nodes (full mesh). The receiving side of the throughput runs is a child process (as a peer on another
// machine would be), so the sender's and the receiver's work overlap as in a real cluster; all use the same child.
// Usage: EXO_LOG_LEVEL=1 nice -n 10 bun bench/net.ts [health_rounds=2000] [tensor_frames=24]
import type { Socket } from "bun";
import { PeerPool, type PeerAddress } from "../src/net/peer-pool.ts";
import { openProbe } from "../src/net/probe.ts";
import { listenTcp, type TcpServer } from "../src/net/sockets.ts";
import { createTopologyService, type TopologyService } from "../src/net/topology-service.ts";
import { PROTOCOL_VERSION, VERSION } from "../src/version.ts";

const SINK = process.argv[2] === "--sink";
const healthRounds = SINK ? 0 : Number(process.argv[2] ?? 2000);
const tensorFrames = Number(process.argv[3] ?? 24);
const MiB = 1024 * 1024;
const KEY = new TextEncoder().encode("bench-cluster-key-0123456789abcdefghijklmnop");

interface N {
  pool: PeerPool;
  server: TcpServer;
  topo: TopologyService;
  addr: PeerAddress;
}

function makeNode(id: string, clusterKey?: Uint8Array): N {
  let port = 0;
  const capabilities = { model: "Bench", chip: "cpu", memory: 1024, flops: { fp32: 1, fp16: 2, int8: 4 } };
  const pool = new PeerPool({
    selfId: id,
    hello: () => ({ nodeId: id, protocol: PROTOCOL_VERSION, version: VERSION, port, capabilities }),
    requestTimeoutMs: 60_000,
    healthTimeoutMs: 5000,
    dialTimeoutMs: 2000,
    handshakeTimeoutMs: 2000,
    maxFrameBytes: 256 * MiB,
    backoffMinMs: 50,
    backoffMaxMs: 500,
    clusterKey,
  });
  const server = listenTcp("127.0.0.1", 0, (s) => pool.accept(s));
  port = server.port;
  const topo = createTopologyService({
    pool,
    capabilities,
    configuredCapabilities: () => undefined,
    maxDepth: 4,
    timeoutMs: 5000,
    refreshIntervalMs: 3_600_000,
  });
  return { pool, server, topo, addr: { nodeId: id, address: "127.0.0.1", port } };
}

/** Child mode: a node "sink" that counts TENSOR frames (answering PROMPT with the count) and a raw byte sink. */
if (SINK) {
  const sink = makeNode("sink");
  const sealedSink = makeNode("sink", KEY);
  for (const node of [sink, sealedSink]) {
    let frames = 0;
    node.pool.handle("TENSOR", () => void frames++);
    node.pool.handle("PROMPT", () => ({ type: "OK", fields: { frames } }));
  }
  let expected = -1;
  let bytes = 0;
  const raw = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, d) {
        if (expected < 0) {
          expected = Number(new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0));
          bytes = d.length - 8;
        } else bytes += d.length;
        if (bytes >= expected) {
          s.write("k");
          expected = -1;
        }
      },
    },
  });
  console.log(JSON.stringify({ port: sink.addr.port, sealed: sealedSink.addr.port, raw: raw.port }));
  await new Promise(() => {});
}

async function mesh(n: number, clusterKey?: Uint8Array): Promise<N[]> {
  const nodes = Array.from({ length: n }, (_, i) => makeNode(`n${i}`, clusterKey));
  for (const x of nodes) x.pool.setPeers(nodes.map((y) => y.addr));
  const deadline = Date.now() + 10_000;
  while (nodes.some((x) => x.pool.stats().peers.some((p) => !p.outbound))) {
    if (Date.now() > deadline) throw new Error("mesh did not form");
    await Bun.sleep(10);
  }
  return nodes;
}
const close = (nodes: N[]) => nodes.forEach((x) => (x.topo.stop(), x.pool.stop(), x.server.stop()));
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const median = (xs: number[]) =>
  pct(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

/** Raw Bun TCP pair: an echo or sink server and a client, with drain-aware writes. */
async function rawPair(
  onServerData: (s: Socket<undefined>, d: Uint8Array) => void,
  onClientData: (d: Uint8Array) => void,
) {
  const server = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: { data: onServerData, open: (s) => void s.setNoDelay(true) },
  });
  const drained: (() => void)[] = [];
  const client = await Bun.connect({
    hostname: "127.0.0.1",
    port: server.port,
    socket: { data: (_s, d) => onClientData(d), drain: () => drained.splice(0).forEach((f) => f()) },
  });
  client.setNoDelay(true);
  const writeAll = async (buf: Uint8Array) => {
    let off = 0;
    while (off < buf.length) {
      const n = client.write(buf, off, buf.length - off);
      off += Math.max(0, n);
      if (off < buf.length) await new Promise<void>((r) => drained.push(r));
    }
  };
  return { client, writeAll, stop: () => (client.end(), server.stop(true)) };
}

// 1. HEALTH round trip, plain and sealed links in alternating blocks, vs raw ping-pong
const [a, b] = await mesh(2);
const [sa, sb] = await mesh(2, KEY);
for (let i = 0; i < 200; i++) await a!.pool.request("n1", "HEALTH"), await sa!.pool.request("n1", "HEALTH");
const health: number[] = [];
const sealedHealth: number[] = [];
const BLOCKS = 10;
for (let block = 0; block < BLOCKS; block++) {
  for (const [node, out] of [
    [a!, health],
    [sa!, sealedHealth],
  ] as const) {
    for (let i = 0; i < healthRounds / BLOCKS; i++) {
      const t0 = performance.now();
      await node.pool.request("n1", "HEALTH");
      out.push(performance.now() - t0);
    }
  }
}
close([sa!, sb!]);
let pong: (() => void) | undefined;
const ping = await rawPair(
  (s, d) => void s.write(d),
  () => pong?.(),
);
const raw: number[] = [];
for (let i = 0; i < healthRounds + 200; i++) {
  const t0 = performance.now();
  await new Promise<void>((r) => ((pong = r), ping.client.write("x")));
  if (i >= 200) raw.push(performance.now() - t0);
}
ping.stop();
health.sort((x, y) => x - y);
sealedHealth.sort((x, y) => x - y);
raw.sort((x, y) => x - y);

// 2. 16 MiB frames through a link vs the same bytes through a raw socket, both to a child process
const child = Bun.spawn([process.execPath, import.meta.path, "--sink"], {
  stdout: "pipe",
  stderr: "inherit",
  env: { ...process.env, EXO_LOG_LEVEL: "1" },
});
const reader = child.stdout.getReader();
const sinkPorts = JSON.parse(new TextDecoder().decode((await reader.read()).value)) as {
  port: number;
  sealed: number;
  raw: number;
};
a!.pool.setPeers([b!.addr, { nodeId: "sink", address: "127.0.0.1", port: sinkPorts.port }]);
const sealedSender = makeNode("sender", KEY);
sealedSender.pool.setPeers([{ nodeId: "sink", address: "127.0.0.1", port: sinkPorts.sealed }]);
const linkedBy = Date.now() + 10_000;
for (const n of [a!, sealedSender])
  while (!n.pool.stats().peers.find((p) => p.nodeId === "sink")?.outbound) {
    if (Date.now() > linkedBy) throw new Error(`${n.pool.selfId} did not link to the sink within 10 s`);
    await Bun.sleep(10);
  }
const tensor = new Uint8Array(16 * MiB).fill(7);
const linkRuns: number[] = [];
const sealedRuns: number[] = [];
const rawRuns: number[] = [];
const sentTo = new Map<N, number>();
async function linkRun(from: N): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < tensorFrames; i++)
    await from.pool.send("sink", "TENSOR", { dtype: "uint8", shape: [tensor.length], request_id: "r" }, tensor);
  const sent = (sentTo.get(from) ?? 0) + tensorFrames;
  sentTo.set(from, sent);
  const count = await from.pool.request("sink", "PROMPT"); // answered after every frame before it was decoded and handled
  if (count.fields.frames !== sent) throw new Error(`sink saw ${String(count.fields.frames)} frames, sent ${sent}`);
  return performance.now() - t0;
}
await linkRun(sealedSender); // warm up the ciphers (their first calls are several times slower)
await linkRun(a!);
for (let run = 0; run < 5; run++) {
  process.stderr.write(`throughput round ${run + 1}/5\n`);
  linkRuns.push(await linkRun(a!));
  sealedRuns.push(await linkRun(sealedSender));

  const total = tensorFrames * tensor.length;
  const ack = Promise.withResolvers<void>();
  const drained: (() => void)[] = [];
  const sock = await Bun.connect({
    hostname: "127.0.0.1",
    port: sinkPorts.raw,
    socket: { data: () => ack.resolve(), drain: () => drained.splice(0).forEach((f) => f()) },
  });
  sock.setNoDelay(true);
  const writeAll = async (buf: Uint8Array) => {
    for (let off = 0; off < buf.length; ) {
      off += Math.max(0, sock.write(buf, off, buf.length - off));
      if (off < buf.length) await new Promise<void>((r) => drained.push(r));
    }
  };
  const t1 = performance.now();
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(total));
  await writeAll(head);
  for (let i = 0; i < tensorFrames; i++) await writeAll(tensor);
  const rawDeadline = setTimeout(() => ack.reject(new Error("the raw sink did not acknowledge within 60 s")), 60_000);
  await ack.promise;
  clearTimeout(rawDeadline);
  rawRuns.push(performance.now() - t1);
  sock.end();
}
const gbps = (ms: number) => (tensorFrames * tensor.length) / MiB / (ms / 1000);
const linkMiBs = gbps(median(linkRuns));
const sealedMiBs = gbps(median(sealedRuns));
const rawMiBs = gbps(median(rawRuns));

// Handshake: connect to a ready link (a probe), plain vs keyed, alternating.
const handshakes: number[] = [];
const sealedHandshakes: number[] = [];
for (let i = 0; i < 200; i++) {
  for (const [port, key, out] of [
    [sinkPorts.port, undefined, handshakes],
    [sinkPorts.sealed, KEY, sealedHandshakes],
  ] as const) {
    const t0 = performance.now();
    const probe = await openProbe("127.0.0.1", port, { probeId: "bench", timeoutMs: 5000, clusterKey: key });
    if (i >= 20) out.push(performance.now() - t0);
    probe.close("bench");
  }
}
child.kill();
sealedSender.pool.stop();
sealedSender.server.stop();

// 3. 1,000 concurrent requests on one link
b!.pool.handle("PROMPT", (msg) => ({ type: "OK", fields: { n: msg.fields.n } }));
const concurrent: number[] = [];
for (let run = 0; run < 5; run++) {
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 1000 }, (_, n) => a!.pool.request("n1", "PROMPT", { n })));
  concurrent.push(performance.now() - t0);
}
const topo2: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = performance.now();
  await a!.topo.refresh();
  topo2.push(performance.now() - t0);
}
close([a!, b!]);

// 4. Topology collection, 8 nodes
const eight = await mesh(8);
const topo8: number[] = [];
for (let i = 0; i < 50; i++) {
  const t0 = performance.now();
  const t = await eight[0]!.topo.refresh();
  topo8.push(performance.now() - t0);
  if (t.nodes.size !== 8 || t.links.length !== 56)
    throw new Error(`8-node topology incomplete: ${t.nodes.size} nodes, ${t.links.length} links`);
}
close(eight);

const ms = (x: number) => x.toFixed(3);
const load = (
  await Bun.file("/proc/loadavg")
    .text()
    .catch(() => "")
)
  .split(" ")
  .slice(0, 3)
  .join(" ");
const rows: [string, string][] = [
  ["HEALTH round trip plain median / p99", `${ms(pct(health, 0.5))} / ${ms(pct(health, 0.99))} ms`],
  ["HEALTH round trip sealed median / p99", `${ms(pct(sealedHealth, 0.5))} / ${ms(pct(sealedHealth, 0.99))} ms`],
  [
    "sealed - plain (median / p99)",
    `+${ms(pct(sealedHealth, 0.5) - pct(health, 0.5))} / +${ms(pct(sealedHealth, 0.99) - pct(health, 0.99))} ms`,
  ],
  ["raw TCP ping-pong median / p99", `${ms(pct(raw, 0.5))} / ${ms(pct(raw, 0.99))} ms`],
  ["HEALTH plain / raw (median)", (pct(health, 0.5) / pct(raw, 0.5)).toFixed(2)],
  [`16 MiB frames x${tensorFrames} via plain link`, `${linkMiBs.toFixed(0)} MiB/s`],
  [`16 MiB frames x${tensorFrames} via sealed link`, `${sealedMiBs.toFixed(0)} MiB/s`],
  [`same bytes via raw TCP`, `${rawMiBs.toFixed(0)} MiB/s`],
  ["plain link / raw throughput", (linkMiBs / rawMiBs).toFixed(2)],
  ["sealed / plain link throughput", (sealedMiBs / linkMiBs).toFixed(2)],
  ["handshake plain / keyed (median)", `${ms(median(handshakes))} / ${ms(median(sealedHandshakes))} ms`],
  ["1000 concurrent requests (median)", `${median(concurrent).toFixed(1)} ms`],
  ["topology collection, 2 nodes (median)", `${median(topo2).toFixed(3)} ms`],
  ["topology collection, 8 nodes (median)", `${median(topo8).toFixed(3)} ms`],
  ["load average (1, 5, 15 min)", load],
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
console.log(
  JSON.stringify({
    bench: "net",
    health_median_ms: pct(health, 0.5),
    health_p99_ms: pct(health, 0.99),
    sealed_health_median_ms: pct(sealedHealth, 0.5),
    sealed_health_p99_ms: pct(sealedHealth, 0.99),
    raw_pingpong_median_ms: pct(raw, 0.5),
    link_mib_s: linkMiBs,
    sealed_mib_s: sealedMiBs,
    raw_mib_s: rawMiBs,
    throughput_ratio: linkMiBs / rawMiBs,
    sealed_plain_ratio: sealedMiBs / linkMiBs,
    handshake_plain_ms: median(handshakes),
    handshake_keyed_ms: median(sealedHandshakes),
    concurrent_1000_ms: median(concurrent),
    topology_2_ms: median(topo2),
    topology_8_ms: median(topo8),
    loadavg: load,
  }),
);
// Handles left open after the figures are out (not tracked down) would keep the event loop, and this, alive.
process.exit(0);
