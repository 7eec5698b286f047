// Peer entries at this node's own address are split off (never dialled).
import { describe, expect, test } from "bun:test";
import { splitSelfAddressed } from "../../../src/config/self-address.ts";

const peer = (nodeId: string, address: string, port: number) => ({ nodeId, address, port });

describe("splitSelfAddressed", () => {
  test("loopback names and this machine's addresses at the node's port are self; other ports or hosts are peers", () => {
    const own = { port: 50051, addresses: ["0.0.0.0", "192.168.1.10"] };
    const { peers, self } = splitSelfAddressed(
      [
        peer("a", "127.0.0.1", 50051),
        peer("b", "LOCALHOST", 50051),
        peer("c", "192.168.1.10", 50051),
        peer("d", "127.0.0.1", 50052),
        peer("e", "192.168.1.11", 50051),
      ],
      own,
    );
    expect(self.map((p) => p.nodeId)).toEqual(["a", "b", "c"]);
    expect(peers.map((p) => p.nodeId)).toEqual(["d", "e"]);
  });
});
