// An intruder on the same network: a raw client that speaks the documented frame format tries to join a keyed
// cluster without the key, with a wrong key, and by replaying a captured handshake, and to join a keyless
// cluster as a listed node id from another loopback address. Each time it is refused, it never receives
// PREPARE, PROMPT or TENSOR, and an API client's answer (behind EXO_API_KEY) is the model's own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import type { NodeError } from "../../src/errors.ts";
import { PeerPool } from "../../src/net/peer-pool.ts";
import { createAuthOffer, deriveLinkKeys, encodeAuth, helloProof, parseAuth } from "../../src/net/handshake.ts";
import { decodePayload, encodeFrame } from "../../src/protocol/frame.ts";
import { FrameSealer, drainParts } from "../../src/protocol/seal.ts";
import { PROTOCOL_VERSION, VERSION } from "../../src/version.ts";
import { intrude, type IntrusionResult } from "../helpers/intruder.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { startTcpRelay } from "../helpers/tcp-relay.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();
const dir = mkdtempSync(join(tmpdir(), "exo-intruder-"));
const KEY = "k3y-for-the-intruder-test-0123456789abcdef";
const API_KEY = "api-secret";
const MODEL = "exo-tiny-chat";
const nodes: Record<string, SpawnedNode> = {};
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
const start = (id: string, file: string) =>
  spawnNode({
    args: [
      ...["--node-id", id, "--port", "0", "--api-port", "0", "--host", "0.0.0.0", "--api-host", "127.0.0.1"],
      ...["--config", file, "--engine", "fake", "--health-interval-ms", "300"],
    ],
    env: { EXO_API_KEY: API_KEY },
  });
const entry = (n: SpawnedNode) => `  ${n.nodeId}: { address: 127.0.0.1, port: ${n.port} }\n`;
async function net(n: SpawnedNode): Promise<any> {
  const res = await fetch(`http://127.0.0.1:${n.apiPort}/debug/net`, {
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  return res.json();
}
async function answer(n: SpawnedNode): Promise<string> {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${n.apiPort}/v1`, apiKey: API_KEY, maxRetries: 0 });
  const r = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "who answers?" }],
    max_tokens: 12,
    temperature: 0,
  });
  return r.choices[0]!.message.content ?? "";
}
/** The HELLO an intruder sends: a listed node id, and a huge memory so placement would pick it. */
const intruderHello = (nodeId: string, to: string) => ({
  node_id: nodeId,
  protocol: PROTOCOL_VERSION,
  version: VERSION,
  port: 1,
  to,
  capabilities: { model: "Evil", chip: "cpu", memory: 999_999, flops: { fp32: 1, fp16: 1, int8: 1 } },
});
function expectShutOut(r: IntrusionResult, reason: RegExp): void {
  expect(r.closedByNode).toBe(true);
  for (const t of ["PREPARE", "PROMPT", "TENSOR", "HELLO", "TOPOLOGY", "STATUS"]) expect(r.types).not.toContain(t);
  const refusal = r.plain.find((m) => m.type === "ERROR");
  expect(String(refusal?.fields.message)).toMatch(reason);
}

beforeAll(async () => {
  const keyed = join(dir, "keyed.yaml");
  const keyless = join(dir, "keyless.yaml");
  write(keyed, `cluster_key: ${KEY}\npeers: {}\n`);
  write(keyless, "peers: {}\n");
  [nodes.a, nodes.b, nodes.c, nodes.d] = await Promise.all([
    start("a", keyed),
    start("b", keyed),
    start("c", keyless),
    start("d", keyless),
  ]);
  write(keyed, `cluster_key: ${KEY}\npeers:\n${entry(nodes.a!)}${entry(nodes.b!)}`);
  write(keyless, `peers:\n${entry(nodes.c!)}${entry(nodes.d!)}`);
  for (const [x, y] of [
    ["a", "b"],
    ["c", "d"],
  ] as const) {
    await waitFor(async () => (await net(nodes[x]!)).peers.find((p: any) => p.nodeId === y)?.up, {
      what: `${x} linked to ${y}`,
      timeoutMs: 15_000,
    });
  }
}, 60_000);

describe("an intruder", () => {
  test(
    "cannot join a keyed cluster without the key, with a wrong key, or by replaying a captured handshake",
    withNodeLogs(async () => {
      const a = nodes.a!;
      const own = await answer(a);
      expect(own.length).toBeGreaterThan(0);

      // 1. No key: a plain HELLO as the listed node b.
      const noKey = intrude({ port: a.port, send: [encodeFrame({ type: "HELLO", fields: intruderHello("b", "a") })] });

      // 2. A wrong key: the keyed handshake done right, with another key.
      const offer = createAuthOffer();
      const wrongKey = intrude({
        port: a.port,
        send: [encodeFrame({ type: "AUTH", fields: encodeAuth(offer) })],
        onFrame: (f) => {
          if (f.type !== "AUTH") return undefined;
          const keys = deriveLinkKeys(
            "dialer",
            new TextEncoder().encode(`${KEY}-guessed`),
            offer,
            parseAuth(decodePayload("AUTH", f.payload).fields),
          );
          const fields = { ...intruderHello("b", "a"), proof: helloProof(keys, "dialer", "b", "a") };
          return drainParts(new FrameSealer(keys.send).seal({ type: "HELLO", fields }, 1 << 20));
        },
      });

      // 3. Replay: record what a real key holder (exo's own probe) sends through a relay, then send it again.
      const captured: Uint8Array[] = [];
      const relay = startTcpRelay(a.port, "127.0.0.1", (direction, chunk) => {
        if (direction === "up") captured.push(new Uint8Array(chunk));
        return chunk;
      });
      write(
        join(dir, "relayed.yaml"),
        `cluster_key: ${KEY}\npeers:\n  a: { address: 127.0.0.1, port: ${relay.port} }\n`,
      );
      const doctor = Bun.spawn([process.execPath, "src/main.ts", "doctor", "--config", join(dir, "relayed.yaml")], {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, EXO_LOG_LEVEL: "1" },
      });
      const [report] = await Promise.all([new Response(doctor.stdout).text(), doctor.exited]);
      relay.stop();
      expect(report).toMatch(/PASS\s+connect \+ handshake\s+.*authenticated, sealed/);
      expect(captured.length).toBeGreaterThan(0);
      const replay = intrude({ port: a.port, send: captured });

      const [r1, r2, r3, during] = await Promise.all([noKey, wrongKey, replay, answer(a)]);
      expectShutOut(r1, /cluster keys differ/);
      expectShutOut(r2, /cluster keys differ/);
      expectShutOut(r3, /cluster keys differ/);
      expect(r2.types.slice(0, 1)).toEqual(["AUTH"]);
      expect(during).toBe(own);
      expect(await answer(a)).toBe(own);
      const peers = (await net(a)).peers.map((p: any) => p.nodeId);
      expect(peers).toEqual(["b"]);
      expect(a.logs()).toMatch(/refusing link .*cluster keys differ/);
    }),
    60_000,
  );

  test(
    "cannot join a keyless cluster as a listed node id from another loopback address",
    withNodeLogs(async () => {
      const c = nodes.c!;
      const own = await answer(c);
      const attempts = ["127.0.0.2", "127.0.0.3"].map((localAddress) =>
        intrude({
          port: c.port,
          localAddress,
          send: [encodeFrame({ type: "HELLO", fields: intruderHello("d", "c") })],
        }),
      );
      const [r2, r3, during] = await Promise.all([...attempts, answer(c)]);
      expectShutOut(r2 as IntrusionResult, /node d linked in from 127\.0\.0\.2, not from its address/);
      expectShutOut(r3 as IntrusionResult, /node d linked in from 127\.0\.0\.3, not from its address/);
      expect(during).toBe(own);
      const d = (await net(c)).peers.find((p: any) => p.nodeId === "d");
      expect(d.inbound.every((l: any) => l.remoteAddress === "127.0.0.1")).toBe(true);
      expect(c.logs()).toContain("no cluster key: links are neither authenticated nor encrypted");

      // The seed report still passes on the keyless pair, with a warning that says how to add a key.
      const doctor = Bun.spawn([process.execPath, "src/main.ts", "doctor", "--config", join(dir, "keyless.yaml")], {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, EXO_LOG_LEVEL: "1" },
      });
      const [report, code] = await Promise.all([new Response(doctor.stdout).text(), doctor.exited]);
      expect(report).toMatch(/result: all \d+ checks passed \(1 warning\)/);
      expect(report).toMatch(/WARN\s+cluster key\s+none: links are neither authenticated nor encrypted.*exo keygen/);
      expect(report).toMatch(/PASS\s+10 health checks/);
      expect(code).toBe(0);
    }),
    60_000,
  );

  test(
    "cannot make a node read a local path: PREPARE from a keyed peer and the API's model get the same 404 for any path",
    withNodeLogs(async () => {
      const a = nodes.a!;
      const existing = join(import.meta.dir, "../../configs/default-model");
      expect(await Bun.file(join(existing, "config.json")).exists()).toBe(true);
      const missing = join(dir, "no-such-model");

      // From the API (behind EXO_API_KEY): 404 naming what was asked, the same words whether the path exists or not.
      const refusal = async (model: string) => {
        const res = await fetch(`http://127.0.0.1:${a.apiPort}/v1/chat/completions`, {
          method: "POST",
          headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
          body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 2 }),
        });
        return { status: res.status, message: ((await res.json()) as any).error.message as string };
      };
      const [apiExisting, apiMissing] = [await refusal(existing), await refusal(missing)];
      expect(apiExisting.status).toBe(404);
      expect(apiMissing.status).toBe(404);
      expect(apiExisting.message).toContain("not a model this node serves");
      expect(apiExisting.message.replace(existing, "P")).toBe(apiMissing.message.replace(missing, "P"));

      // From a peer that holds the key and is in the peer file: PREPARE naming a path is refused the same way.
      const peer = new PeerPool({
        selfId: "x",
        hello: () => ({ nodeId: "x", protocol: PROTOCOL_VERSION, version: VERSION, port: 0 }),
        requestTimeoutMs: 10_000,
        healthTimeoutMs: 5000,
        dialTimeoutMs: 2000,
        handshakeTimeoutMs: 2000,
        maxFrameBytes: 1 << 20,
        backoffMinMs: 50,
        backoffMaxMs: 500,
        clusterKey: new TextEncoder().encode(KEY),
      });
      const keyed = join(dir, "keyed.yaml");
      const listed = `cluster_key: ${KEY}\npeers:\n${entry(a)}${entry(nodes.b!)}  x: { address: 127.0.0.1, port: 1 }\n`;
      try {
        write(keyed, listed);
        peer.setPeers([{ nodeId: "a", address: "127.0.0.1", port: a.port }]);
        await waitFor(
          async () =>
            (await peer.request("a", "HEALTH").then(
              () => true,
              () => false,
            )) || undefined,
          { what: "peer x linked to a", timeoutMs: 10_000 },
        );
        const prepare = async (modelId: string) => {
          const plan = { modelId, nLayers: 2, stages: [{ nodeId: "a", layerStart: 0, layerEnd: 2 }] };
          return (await peer.request("a", "PREPARE", { modelId, plan }).catch((e: unknown) => e)) as NodeError;
        };
        const [peerExisting, peerMissing] = [await prepare(existing), await prepare(missing)];
        expect(peerExisting.code).toBe("E_MODEL_UNKNOWN");
        expect(peerMissing.code).toBe("E_MODEL_UNKNOWN");
        expect(peerExisting.message.replace(existing, "P")).toBe(peerMissing.message.replace(missing, "P"));
        expect(await answer(a)).toBeTruthy(); // still serving
      } finally {
        peer.stop();
        write(keyed, `cluster_key: ${KEY}\npeers:\n${entry(a)}${entry(nodes.b!)}`);
      }
    }),
    60_000,
  );
});
