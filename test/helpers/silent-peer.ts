// A test peer that speaks the node protocol just enough to be a cluster member (HELLO, HEALTH, TOPOLOGY_REQ) and
// ignores every PREPARE: the "answers health checks but never prepares" node that must not hang a request. Built on
// the project's own codec (src/protocol) and HELLO (src/net/hello.ts), without a cluster key.
import type { Socket, TCPSocketListener } from "bun";
import { encodeHello, parseHello, type Hello } from "../../src/net/hello.ts";
import { FrameDecoder, encodeFrame } from "../../src/protocol/frame.ts";
import type { Message } from "../../src/protocol/types.ts";
import { PROTOCOL_VERSION, VERSION } from "../../src/version.ts";

export interface SilentPeer {
  nodeId: string;
  port: number;
  /** PREPAREs received (and never answered). */
  prepares(): number;
  stop(): void;
}

/** Listen on 127.0.0.1 (port 0) as node `nodeId` reporting `memoryMb`; nodes dial it from their peer file. */
export function startSilentPeer(nodeId: string, memoryMb: number): SilentPeer {
  const capabilities = {
    model: "silent test peer",
    chip: "none",
    memory: memoryMb,
    flops: { fp32: 1, fp16: 1, int8: 1 },
  };
  let prepares = 0;
  let hello: Hello;
  const answer = (socket: Socket<FrameDecoder>, msg: Message) => {
    const id = msg.fields.id;
    const reply = (type: Message["type"], fields: Record<string, unknown> = {}) =>
      socket.write(encodeFrame({ type, fields: { ...fields, id } }));
    if (msg.type === "HELLO") {
      parseHello(msg.fields, { ...hello, nodeId: `${nodeId}-listener` });
      socket.write(encodeFrame({ type: "HELLO", fields: encodeHello(hello) }));
    } else if (msg.type === "HEALTH") {
      reply("HEALTH_OK");
    } else if (msg.type === "TOPOLOGY_REQ") {
      const topology = { nodes: { [nodeId]: capabilities }, peer_graph: { [nodeId]: [] }, active_node_id: nodeId };
      reply("TOPOLOGY", { topology });
    } else if (msg.type === "PREPARE") {
      prepares++;
    }
  };
  const server: TCPSocketListener<FrameDecoder> = Bun.listen<FrameDecoder>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open: (socket) => {
        socket.data = new FrameDecoder();
        socket.setNoDelay(true);
      },
      data: (socket, chunk) => {
        for (const msg of socket.data.push(chunk)) answer(socket, msg);
      },
    },
  });
  hello = { nodeId, protocol: PROTOCOL_VERSION, version: VERSION, capabilities, port: server.port };
  return { nodeId, port: server.port, prepares: () => prepares, stop: () => server.stop(true) };
}
