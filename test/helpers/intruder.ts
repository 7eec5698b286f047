// A raw client that speaks the frame format (no Link, no PeerPool): it writes the bytes it is given, answers
// what a script tells it to, and records the type of every frame it receives until the node closes it.
import net from "node:net";
import { FrameDecoder, decodePayload, type RawFrame } from "../../src/protocol/frame.ts";
import type { Message } from "../../src/protocol/types.ts";

export interface IntrusionResult {
  /** Types of every frame received, in order (SEALED ones stay opaque). */
  types: string[];
  /** Plain frames received, decoded. */
  plain: Message[];
  /** True when the node closed the connection within the deadline. */
  closedByNode: boolean;
}

export interface IntrusionOptions {
  port: number;
  /** Bind the client's end to this address (e.g. 127.0.0.2: another host on loopback). */
  localAddress?: string;
  /** Bytes sent right after connecting. */
  send?: Uint8Array[];
  /** Called for every received frame; returns bytes to send back, if any. */
  onFrame?(frame: RawFrame): Uint8Array[] | undefined;
  timeoutMs?: number;
}

export async function intrude(o: IntrusionOptions): Promise<IntrusionResult> {
  const result: IntrusionResult = { types: [], plain: [], closedByNode: false };
  const decoder = new FrameDecoder();
  const done = Promise.withResolvers<void>();
  const socket = net.connect({ host: "127.0.0.1", port: o.port, localAddress: o.localAddress });
  socket.on("connect", () => {
    for (const b of o.send ?? []) socket.write(b);
  });
  socket.on("data", (chunk: Buffer) => {
    try {
      for (const f of decoder.pushRaw(new Uint8Array(chunk))) {
        result.types.push(f.type);
        if (f.type !== "SEALED") result.plain.push(decodePayload(f.type, f.payload, f.body));
        for (const b of o.onFrame?.(f) ?? []) socket.write(b);
      }
    } catch (err) {
      result.types.push(`undecodable: ${(err as Error).message}`);
    }
  });
  socket.on("close", () => {
    result.closedByNode = true;
    done.resolve();
  });
  socket.on("error", () => {});
  const timer = setTimeout(() => done.resolve(), o.timeoutMs ?? 5000);
  await done.promise;
  clearTimeout(timer);
  socket.destroy();
  return result;
}
