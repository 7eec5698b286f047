// The write queue against a scripted socket: partial writes continue on drain, in order, byte for byte;
// small frames take one write each; a refused write or a bad frame closes once with a reason; big frames arrive
// with their body in a buffer of its own.
import { expect, test } from "bun:test";
import type { Socket } from "bun";
import { Connection, ZERO_COPY_MIN_BYTES, type SocketData } from "../../../src/net/connection.ts";
import { FrameDecoder, encodeFrame, type OutgoingMessage } from "../../../src/protocol/frame.ts";
import { FrameSealer, drainParts } from "../../../src/protocol/seal.ts";
import type { Message } from "../../../src/protocol/types.ts";

/** A socket that takes at most `budget` bytes until the test calls refill(); records every write call. */
function scriptedSocket(budget: number) {
  const parts: Uint8Array[] = [];
  const calls: number[] = [];
  let left = budget;
  let result: number | undefined;
  const socket = {
    data: {} as SocketData,
    localPort: 5000,
    remotePort: 6000,
    remoteAddress: "127.0.0.1",
    setNoDelay: () => true,
    ended: 0,
    end() {
      this.ended++;
    },
    write(buf: Uint8Array, offset = 0, length = buf.byteLength - offset) {
      calls.push(length);
      if (result !== undefined) return result;
      const n = Math.min(length, left);
      parts.push(buf.slice(offset, offset + n));
      left -= n;
      return n;
    },
  };
  return {
    socket,
    received: () => Buffer.concat(parts),
    calls,
    refill: (n: number) => (left = n),
    failWrites: () => (result = -1),
    asBun: socket as unknown as Socket<SocketData>,
  };
}

function connection(s: ReturnType<typeof scriptedSocket>, onMessage: (m: Message) => void = () => {}) {
  const closes: string[] = [];
  const conn = new Connection(s.asBun, {
    direction: "out",
    maxFrameBytes: 64 << 20,
    onMessage,
    onClose: (r) => closes.push(r),
  });
  return { conn, closes };
}

test("frames cut short by a full socket continue on drain, in order and byte for byte", async () => {
  const s = scriptedSocket(1000);
  const { conn } = connection(s);
  const big = new Uint8Array(ZERO_COPY_MIN_BYTES + 17).map((_, i) => i & 255);
  const msgs: OutgoingMessage[] = [
    { type: "HEALTH", fields: { id: 1 } },
    { type: "TENSOR", fields: { dtype: "uint8", shape: [big.length] }, body: big },
    { type: "TOKEN", fields: { request_id: "r", token: 5 } },
  ];
  for (const m of msgs) conn.write(m);
  let flushed = false;
  void conn.flushed().then(() => (flushed = true));
  while (conn.queuedBytes > 0) {
    s.refill(64 * 1024);
    conn.handleDrain();
  }
  await Promise.resolve();
  expect(flushed).toBe(true);
  const expected = Buffer.concat(msgs.map((m) => encodeFrame(m)));
  expect(s.received().length).toBe(expected.length);
  expect(s.received().equals(expected)).toBe(true);
  expect(new FrameDecoder().push(s.received()).map((m) => m.type)).toEqual(["HEALTH", "TENSOR", "TOKEN"]);
  expect(conn.framesOut).toBe(3);
});

test("with room in the socket each small frame is a single write", () => {
  const s = scriptedSocket(1 << 20);
  const { conn } = connection(s);
  for (let i = 0; i < 5; i++) conn.write({ type: "HEALTH", fields: { id: i } });
  expect(s.calls.length).toBe(5);
  expect(conn.queuedBytes).toBe(0);
});

test("a write the socket refuses closes the connection once, and later writes throw E_PEER_DOWN", () => {
  const s = scriptedSocket(1 << 20);
  const { conn, closes } = connection(s);
  s.failWrites();
  conn.write({ type: "HEALTH", fields: { id: 1 } });
  expect(conn.closed).toBe(true);
  expect(closes).toEqual(["socket refused the write (closed)"]);
  expect(() => conn.write({ type: "HEALTH" })).toThrow("closed");
  conn.handleClosed("closed by the other side");
  expect(closes.length).toBe(1);
});

test("a bad frame tells the peer why, ends the socket and reports the reason", () => {
  const s = scriptedSocket(1 << 20);
  const got: Message[] = [];
  const { conn, closes } = connection(s, (m) => got.push(m));
  conn.handleData(encodeFrame({ type: "HEALTH", fields: { id: 1 } }));
  conn.handleData(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
  expect(got.map((m) => m.type)).toEqual(["HEALTH"]);
  expect(closes.length).toBe(1);
  expect(closes[0]).toStartWith("E_PROTOCOL_MAGIC");
  expect(s.socket.ended).toBe(1);
  const [error] = new FrameDecoder().push(s.received());
  expect(error!.type).toBe("ERROR");
  expect(error!.fields.code).toBe("E_PROTOCOL_MAGIC");
});

test("a big frame whose fields length runs past its payload closes the link at once, naming it", () => {
  const s = scriptedSocket(1 << 20);
  const got: Message[] = [];
  const { conn, closes } = connection(s, (m) => got.push(m));
  const body = new Uint8Array(2 << 20);
  const frame = encodeFrame({ type: "TENSOR", fields: { dtype: "uint8", shape: [body.length] }, body });
  new DataView(frame.buffer).setUint32(9, 0x7fffffff);
  conn.handleData(frame.subarray(0, (1 << 20) + 100)); // a megabyte starts it: the rest need not arrive
  expect(got).toEqual([]);
  expect(closes).toEqual([
    `E_PROTOCOL_PAYLOAD: TENSOR fields length ${0x7fffffff} runs past the ${frame.length - 9}-byte payload`,
  ]);
  const [error] = new FrameDecoder().push(s.received());
  expect(error!.fields.code).toBe("E_PROTOCOL_PAYLOAD");
});

test("on a sealed link a big frame arrives with its body in its own buffer; a flipped byte in one closes the link", () => {
  const key = new Uint8Array(32).fill(9);
  const body = new Uint8Array(3 << 20).map((_, i) => i & 255);
  const msg: OutgoingMessage = { type: "TENSOR", fields: { dtype: "uint8", shape: [body.length] }, body };
  const wire = () => Buffer.concat(drainParts(new FrameSealer(key).seal(msg, 64 << 20)));
  for (const flip of [false, true]) {
    const s = scriptedSocket(1 << 20);
    const got: Message[] = [];
    const { conn, closes } = connection(s, (m) => got.push(m));
    conn.startSealing({ send: new Uint8Array(32), receive: key });
    const bytes = wire();
    if (flip) bytes[2 << 20] = bytes[2 << 20]! ^ 1;
    for (let at = 0; at < bytes.length; at += 512 * 1024) conn.handleData(bytes.subarray(at, at + 512 * 1024));
    if (flip) {
      expect(got).toEqual([]);
      expect(closes).toEqual(["E_PROTOCOL_SEAL: sealed frame 0 failed authentication: altered on the way"]);
    } else {
      expect(closes).toEqual([]);
      expect(got[0]!.body.byteOffset === 0 && got[0]!.body.buffer.byteLength === body.length).toBe(true);
      expect(Buffer.from(got[0]!.body).equals(body)).toBe(true);
    }
  }
});
