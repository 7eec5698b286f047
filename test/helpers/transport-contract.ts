// The PeerTransport contract (src/net/transport.ts) as one suite, run against the TCP PeerPool and the
// in-memory network the cluster's unit tests use, so the fake cannot drift from the real thing.
import { asNodeId } from "../../src/ids.ts";
import { describe, expect, test } from "bun:test";
import { NodeError, isNodeError } from "../../src/errors.ts";
import type { PeerTransport } from "../../src/net/transport.ts";
import { waitFor } from "./wait.ts";

export interface TransportPair {
  a: PeerTransport;
  b: PeerTransport;
  /** b disappears as a killed process would. */
  killB(): void;
  close(): void;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return isNodeError(err) ? err.code : `not a NodeError: ${String(err)}`;
  }
}

export function runTransportContract(name: string, makePair: () => Promise<TransportPair>): void {
  describe(`PeerTransport contract: ${name}`, () => {
    const withPair = (fn: (p: TransportPair) => Promise<void>) => async () => {
      const pair = await makePair();
      try {
        await fn(pair);
      } finally {
        pair.close();
      }
    };

    test(
      "a request gets the handler's reply, and the handler learns who asked",
      withPair(async ({ a, b }) => {
        b.handle("PREPARE", (msg, from) => ({
          type: "OK",
          fields: { echo: msg.fields.x, from },
          body: Uint8Array.of(...msg.body, 9),
        }));
        const reply = await a.request("b", "PREPARE", { x: 41 }, Uint8Array.of(1, 2));
        expect(reply.type).toBe("OK");
        expect(reply.fields.echo).toBe(41);
        expect(reply.fields.from).toBe("a");
        expect([...reply.body]).toEqual([1, 2, 9]);
      }),
    );

    test(
      "a NodeError thrown by the handler rejects the caller with the same code",
      withPair(async ({ a, b }) => {
        b.handle("PREPARE", () => {
          throw new NodeError("E_MODEL_UNKNOWN", "no such model");
        });
        expect(await codeOf(a.request("b", "PREPARE"))).toBe("E_MODEL_UNKNOWN");
      }),
    );

    test(
      "one-way messages arrive in the order they were sent",
      withPair(async ({ a, b }) => {
        const got: number[] = [];
        b.handle("TOKEN", (msg) => void got.push(msg.fields.n as number));
        for (let n = 0; n < 50; n++) await a.send("b", "TOKEN", { n });
        await waitFor(() => got.length === 50, { what: "50 tokens" });
        expect(got).toEqual(Array.from({ length: 50 }, (_, n) => n));
      }),
    );

    test(
      "messages to itself reach its own handlers",
      withPair(async ({ a }) => {
        const got: string[] = [];
        a.handle("TOKEN", (_msg, from) => void got.push(from));
        a.handle("PREPARE", () => ({ type: "OK", fields: { self: true } }));
        await a.send("a", "TOKEN");
        expect((await a.request("a", "PREPARE")).fields.self).toBe(true);
        await waitFor(() => got.length === 1, { what: "self delivery" });
        expect(got).toEqual(["a"]);
      }),
    );

    test(
      "an unanswered request rejects with E_PEER_TIMEOUT at its deadline",
      withPair(async ({ a, b }) => {
        b.handle("PROMPT", () => new Promise(() => {}));
        expect(await codeOf(a.request("b", "PROMPT", {}, undefined, { timeoutMs: 50 }))).toBe("E_PEER_TIMEOUT");
      }),
    );

    test(
      "a peer that dies is reported down, fails the requests in flight with E_PEER_DOWN, and refuses new ones",
      withPair(async (p) => {
        const { a, b } = p;
        b.handle("PROMPT", () => new Promise(() => {}));
        const changes: string[] = [];
        a.onPeerChange((peer, up) => changes.push(`${peer}:${up}`));
        await waitFor(() => a.peersUp().includes(asNodeId("b")), { what: "b up at a" });
        const inFlight = a.request("b", "PROMPT");
        p.killB();
        expect(await codeOf(inFlight)).toBe("E_PEER_DOWN");
        await waitFor(() => !a.peersUp().includes(asNodeId("b")), { what: "b down at a" });
        expect(changes).toContain("b:false");
        expect(await codeOf(a.send("b", "TOKEN"))).toBe("E_PEER_DOWN");
      }),
    );
  });
}
