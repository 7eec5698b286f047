// The HELLO handshake's content: what a node says about itself, and the checks on what a peer says.
// Pure: the link sends and receives these; a failed check becomes a readable E_HANDSHAKE on both sides.
import { NodeError } from "../errors.ts";
import type { DeviceCapabilities } from "../topology/types.ts";
import { PROTOCOL_VERSION } from "../version.ts";

/** What one side of a link says in its HELLO frame. */
export interface Hello {
  nodeId: string;
  protocol: number;
  /** Build version (package version or the compiled binary's). */
  version: string;
  capabilities?: DeviceCapabilities;
  /** The TCP port this node listens on (0 for a probe such as `exo doctor`, which does not listen). */
  port: number;
  /** A short-lived client (doctor, topology): answered, but never counted as a cluster member. */
  probe?: boolean;
}

/**
 * HELLO fields on the wire: exo's snake_case names (`node_id`), kept as exo had them, while our own messages use
 * camelCase (the rule is in src/protocol/README.md, "Field names"). A dialer adds `to`, the node id it expects.
 */
export function encodeHello(h: Hello, to?: string): Record<string, unknown> {
  const fields: Record<string, unknown> = { node_id: h.nodeId, protocol: h.protocol, version: h.version, port: h.port };
  if (to !== undefined) fields.to = to;
  if (h.capabilities) fields.capabilities = h.capabilities;
  if (h.probe) fields.probe = true;
  return fields;
}

/**
 * Read a peer's HELLO and check it against ours.
 * @throws NodeError E_HANDSHAKE with the reason, e.g. a protocol or build version mismatch
 */
export function parseHello(fields: Record<string, unknown>, mine: Hello): Hello {
  const { node_id, protocol, version, port, capabilities, probe } = fields;
  if (typeof node_id !== "string" || node_id === "") throw new NodeError("E_HANDSHAKE", "HELLO without a node_id");
  if (protocol !== PROTOCOL_VERSION) {
    throw new NodeError(
      "E_HANDSHAKE",
      `node ${node_id} speaks protocol ${String(protocol)}, node ${mine.nodeId} speaks protocol ${mine.protocol}`,
    );
  }
  if (typeof version !== "string") throw new NodeError("E_HANDSHAKE", `node ${node_id} sent no build version`);
  if (version !== mine.version) {
    throw new NodeError(
      "E_HANDSHAKE",
      `node ${node_id} runs exo ${version}, node ${mine.nodeId} runs exo ${mine.version}: run the same build on every node`,
    );
  }
  if (node_id === mine.nodeId && !probe && !mine.probe) {
    throw new NodeError(
      "E_HANDSHAKE",
      `node ${node_id} has the same node id as this node: give each node its own --node-id`,
    );
  }
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new NodeError("E_HANDSHAKE", `node ${node_id} sent an invalid listen port ${String(port)}`);
  }
  const hello: Hello = { nodeId: node_id, protocol, version, port };
  if (isCapabilities(capabilities)) hello.capabilities = capabilities;
  if (probe === true) hello.probe = true;
  return hello;
}

function isCapabilities(v: unknown): v is DeviceCapabilities {
  if (typeof v !== "object" || v === null) return false;
  const c = v as Record<string, unknown>;
  const f = c.flops as Record<string, unknown> | undefined;
  return (
    typeof c.model === "string" &&
    typeof c.chip === "string" &&
    typeof c.memory === "number" &&
    typeof f === "object" &&
    f !== null &&
    typeof f.fp32 === "number" &&
    typeof f.fp16 === "number" &&
    typeof f.int8 === "number"
  );
}
