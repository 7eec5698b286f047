// A short-lived client link (`exo doctor`, `exo topology --peer`): dials a node, says HELLO as a probe
// (answered, never counted as a cluster member) and hands back the ready Link.
import { PROTOCOL_VERSION, VERSION } from "../version.ts";
import { MAX_FRAME_BYTES } from "../protocol/frame.ts";
import { Link } from "./link.ts";
import { dialTcp } from "./sockets.ts";

export interface ProbeOptions {
  /** How the probe names itself in its HELLO (shown in the node's logs). */
  probeId: string;
  /** Node id expected at the address; the node refuses the link when it is someone else. */
  expect?: string;
  timeoutMs: number;
  /** The cluster key, when the cluster has one. */
  clusterKey?: Uint8Array;
}

/**
 * Connect to host:port and complete the handshake.
 * @throws NodeError E_PEER_DOWN (cannot connect, closed), E_HANDSHAKE (refused, e.g. version mismatch or wrong node)
 */
export async function openProbe(host: string, port: number, opts: ProbeOptions): Promise<Link> {
  let link: Link | undefined;
  await dialTcp(host, port, opts.timeoutMs, (socket) => {
    link = new Link(socket, {
      direction: "out",
      hello: { nodeId: opts.probeId, protocol: PROTOCOL_VERSION, version: VERSION, port: 0, probe: true },
      expect: opts.expect,
      clusterKey: opts.clusterKey,
      handshakeTimeoutMs: opts.timeoutMs,
      maxFrameBytes: MAX_FRAME_BYTES,
      onMessage: (l, msg) => {
        if (typeof msg.fields.id === "number")
          l.answer(msg.fields.id, {
            type: "ERROR",
            fields: { code: "E_PROTOCOL_TYPE", message: "a probe serves no requests" },
          });
      },
      onClose: () => {},
    });
  });
  await link!.ready;
  return link!;
}
