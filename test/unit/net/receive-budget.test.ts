// Bounded memory under hostile input: partly received big frames share one budget across decoders (links), and
// a flood of failed handshakes is logged at a bounded rate with the rest counted by code.
import { describe, expect, test } from "bun:test";
import { FrameDecoder } from "../../../src/protocol/frame.ts";
import { MESSAGE_TYPES } from "../../../src/protocol/types.ts";
import { createReceiveBudget } from "../../../src/net/receive-budget.ts";
import { createRefusalLog } from "../../../src/net/refusal-log.ts";
import { waitFor } from "../../helpers/wait.ts";

const MiB = 1024 * 1024;
function head(payloadBytes: number): Uint8Array {
  const h = Uint8Array.of(0x45, 0x58, 0x4f, 0x01, MESSAGE_TYPES.TENSOR, 0, 0, 0, 0);
  new DataView(h.buffer).setUint32(5, payloadBytes);
  return h;
}

describe("receive budget", () => {
  test("a third link's big partial frame is refused while two hold the budget; closing gives it back", () => {
    const budget = createReceiveBudget(5 * MiB);
    const links = [0, 1, 2].map(() => new FrameDecoder({ maxFrameBytes: 256 * MiB, budget }));
    for (const d of links.slice(0, 2)) {
      d.pushRaw(head(2 * MiB));
      d.pushRaw(new Uint8Array(MiB + 1));
    }
    expect(budget.heldBytes).toBe(4 * MiB);
    links[2]!.pushRaw(head(2 * MiB));
    expect(() => links[2]!.pushRaw(new Uint8Array(MiB + 1))).toThrow(/partly received frames .* 4194304 of 5242880/);
    links[0]!.close();
    expect(budget.heldBytes).toBe(2 * MiB);
    const fresh = new FrameDecoder({ maxFrameBytes: 256 * MiB, budget });
    fresh.pushRaw(head(2 * MiB));
    fresh.pushRaw(new Uint8Array(MiB + 1));
    const done = fresh.pushRaw(new Uint8Array(MiB - 1)); // the rest of the 2 MiB payload
    expect(done.length).toBe(1);
    expect(budget.heldBytes).toBe(2 * MiB);
  });
});

describe("refusal log", () => {
  test("logs the first few per window, then one line counting the rest by code", async () => {
    const lines: string[] = [];
    const log = createRefusalLog((l) => lines.push(l), { perWindow: 3, windowMs: 50 });
    for (let i = 0; i < 100; i++) log.warn(`refusing link ${i}`, i % 2 ? "E_HANDSHAKE" : "E_PROTOCOL_MAGIC");
    expect(lines.length).toBe(3);
    await waitFor(() => lines.length === 4, { what: "the summary line" });
    expect(lines[3]).toBe(
      "refusing link: 97 more connections failed before or during their handshake in the last 0.05 s (E_HANDSHAKE 49, E_PROTOCOL_MAGIC 48)",
    );
    log.warn("refusing link again", "E_HANDSHAKE");
    expect(lines.length).toBe(5);
    log.stop();
  });
});
