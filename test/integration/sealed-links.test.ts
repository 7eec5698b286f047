// Two keyed nodes linked through a TCP relay that sees every byte: the capture holds no readable frame JSON,
// exo doctor passes (and fails with the fix under another key), a flipped byte closes the link and the request
// in flight errors cleanly, and a key changed in the peer files re-establishes the links with it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { FrameDecoder, decodePayload } from "../../src/protocol/frame.ts";
import { spawnNode, useNodes, withNodeLogs, type SpawnedNode } from "../helpers/spawn-node.ts";
import { startTcpRelay, type TcpRelay } from "../helpers/tcp-relay.ts";
import { waitFor } from "../helpers/wait.ts";

useNodes();
const dir = mkdtempSync(join(tmpdir(), "exo-sealed-"));
const fileA = join(dir, "a.yaml");
const fileB = join(dir, "b.yaml");
const K1 = "first-cluster-key-0123456789abcdefghij";
const K2 = "second-cluster-key-0123456789abcdefghij";
const MODEL = "exo-tiny-chat";
let a: SpawnedNode;
let b: SpawnedNode;
let relay: TcpRelay;
const captured = { up: [] as Uint8Array[], down: [] as Uint8Array[] };
let flipNext = false;

function write(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}
// a reaches b only through the relay; b's way to a is a dead port, so b answers on a's link: every byte passes the relay.
const writeA = (key: string) =>
  write(fileA, `cluster_key: ${key}\npeers:\n  b: { address: 127.0.0.1, port: ${relay.port} }\n`);
const writeB = (key: string) => write(fileB, `cluster_key: ${key}\npeers:\n  a: { address: 127.0.0.1, port: 1 }\n`);
const start = (id: string, file: string) =>
  spawnNode({
    args: [
      ...["--node-id", id, "--port", "0", "--api-port", "0", "--host", "127.0.0.1", "--api-host", "127.0.0.1"],
      ...["--config", file, "--engine", "fake", "--fake-step-ms", "20", "--health-interval-ms", "300"],
      // No failover: this file checks what a tampered frame does to the link and to the request on it (that a
      // request also survives it by failing over is test/integration/failover.test.ts's subject).
      ...["--memory-mb", "4000", "--max-failovers", "0"],
    ],
  });
async function bAtA(): Promise<any> {
  return ((await (await fetch(`http://127.0.0.1:${a.apiPort}/debug/net`)).json()) as any).peers.find(
    (p: any) => p.nodeId === "b",
  );
}
const client = () => new OpenAI({ baseURL: `http://127.0.0.1:${a.apiPort}/v1`, apiKey: "unused", maxRetries: 0 });
async function answer(maxTokens = 12): Promise<string> {
  const r = await client().chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "tell me a secret: swordfish" }],
    max_tokens: maxTokens,
    temperature: 0,
  });
  return r.choices[0]!.message.content ?? "";
}
async function doctor(env: Record<string, string> = {}): Promise<{ report: string; code: number }> {
  const file = join(dir, "doctor.yaml");
  write(
    file,
    `cluster_key: ${K1}\npeers:\n  a: { address: 127.0.0.1, port: ${a.port} }\n  b: { address: 127.0.0.1, port: ${b.port} }\n`,
  );
  const p = Bun.spawn([process.execPath, "src/main.ts", "doctor", "--config", file], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, EXO_LOG_LEVEL: "1", ...env },
  });
  const [report, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return { report, code };
}

beforeAll(async () => {
  write(fileB, `cluster_key: ${K1}\npeers: {}\n`);
  b = await start("b", fileB);
  relay = startTcpRelay(b.port, "127.0.0.1", (direction, chunk) => {
    captured[direction].push(new Uint8Array(chunk));
    if (!flipNext || direction !== "up") return chunk;
    flipNext = false;
    const bad = new Uint8Array(chunk);
    bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x01; // the last byte of a frame: its authentication tag
    return bad;
  });
  writeB(K1);
  write(fileA, "peers: {}\n");
  a = await start("a", fileA);
  writeA(K1);
  await waitFor(async () => (await bAtA())?.up, { what: "a linked to b through the relay", timeoutMs: 15_000 });
}, 60_000);
afterAll(() => {
  relay?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("keyed links through a relay", () => {
  test(
    "a 2-node request leaves no readable frame JSON on the wire: only AUTH, then sealed frames",
    withNodeLogs(async () => {
      const text = await answer();
      expect(text.length).toBeGreaterThan(0);
      for (const direction of ["up", "down"] as const) {
        const bytes = Buffer.concat(captured[direction]);
        expect([...bytes.subarray(0, 4)]).toEqual([0x45, 0x58, 0x4f, 0x01]);
        const frames = new FrameDecoder().pushRaw(new Uint8Array(bytes));
        const types = frames.map((f) => f.type);
        expect(types[0]).toBe("AUTH");
        expect(new Set(types.slice(1))).toEqual(new Set(["SEALED"]));
        expect(types.length).toBeGreaterThan(10);
        // AUTH says nothing about the node; everything after it is ciphertext, with no JSON left readable.
        expect(Object.keys(decodePayload("AUTH", frames[0]!.payload).fields).sort()).toEqual([
          "key",
          "nonce",
          "protocol",
        ]);
        const wire = bytes.subarray(9 + frames[0]!.payload.length).toString("latin1");
        for (const readable of ["node_id", "capabilities", "requestId", "modelId", "plan", "swordfish", MODEL])
          expect(wire.includes(readable)).toBe(false);
      }
      const decoded = Buffer.concat(captured.up).length + Buffer.concat(captured.down).length;
      expect(decoded).toBeGreaterThan(1000);
    }),
  );

  test(
    "exo doctor passes the seed report with the key, and fails with the fix under another key",
    withNodeLogs(async () => {
      const ok = await doctor();
      expect(ok.report).toMatch(/result: all \d+ checks passed\n/);
      expect(ok.report).toMatch(/PASS\s+connect \+ handshake\s+.*authenticated, sealed/);
      expect(ok.report).toMatch(/PASS\s+cluster key\s+links authenticated and sealed \(AES-256-GCM\)/);
      expect(ok.code).toBe(0);
      const bad = await doctor({ EXO_CLUSTER_KEY: K2 });
      expect(bad.report).toMatch(/FAIL\s+connect \+ handshake\s+E_HANDSHAKE: .*cluster keys differ.*exo keygen/);
      expect(bad.code).toBe(1);
    }),
    30_000,
  );

  test(
    "a flipped byte in a sealed frame closes the link with a logged reason; the request in flight errors cleanly",
    withNodeLogs(async () => {
      const own = await answer();
      const before = (await bAtA()).outbound.connectionId;
      const inFlight = answer(80).then(
        () => undefined,
        (err: unknown) => err as { status?: number; message: string },
      );
      await waitFor(
        async () =>
          ((await (await fetch(`http://127.0.0.1:${b.apiPort}/debug/state`)).json()) as any).live_requests.stages > 0,
        {
          what: "the request running at b",
        },
      );
      flipNext = true;
      const err = await inFlight;
      expect(err).toBeDefined();
      expect(err!.status).toBeGreaterThanOrEqual(500);
      expect(err!.message).toMatch(/E_PEER_DOWN|closed|down/i);
      await waitFor(() => /closing link a .*E_PROTOCOL_SEAL: sealed frame \d+ failed authentication/.test(b.logs()), {
        what: "b's logged reason",
      });
      // The link comes back (a new handshake) and the node serves as before.
      await waitFor(async () => (await bAtA())?.outbound?.connectionId > before, {
        what: "a new link",
        timeoutMs: 10_000,
      });
      expect(await answer()).toBe(own);
    }),
    30_000,
  );

  test(
    "a key changed in the peer files re-establishes the links with it; a key on one side only keeps the peer out",
    withNodeLogs(async () => {
      const before = (await bAtA()).outbound.connectionId;
      writeA(K2);
      await waitFor(async () => (await bAtA())?.lastDialError?.includes("cluster keys differ"), {
        what: "a refused under its new key",
        timeoutMs: 10_000,
      });
      expect((await bAtA()).up).toBe(false);
      writeB(K2);
      await waitFor(async () => (await bAtA())?.up, { what: "a and b linked under the new key", timeoutMs: 10_000 });
      expect((await bAtA()).outbound.connectionId).not.toBe(before);
      expect(a.logs()).toContain("cluster key changed: re-establishing every link");
      expect((await answer()).length).toBeGreaterThan(0);
    }),
    30_000,
  );
});
