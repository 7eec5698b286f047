// The peer file (DESIGN §4): exo's manual-discovery JSON, or YAML with the same keys → a frozen PeerFile.
// Validation names the file, the key path and the reason; every problem in the file is reported at once.
import YAML from "yaml";
import { duplicatePeerId } from "./duplicate-peers.ts";
import { NodeError } from "../errors.ts";
import type { DeviceCapabilities } from "../topology/types.ts";

/** One entry of `peers`: where a node listens, and optionally what it can do. */
export interface PeerEntry {
  readonly address: string;
  readonly port: number;
  readonly deviceCapabilities?: Readonly<DeviceCapabilities>;
}

/** A peer entry with its id, for callers that iterate. */
export interface PeerSpec extends PeerEntry {
  readonly nodeId: string;
}

/** A validated peer file. `peers` keeps the file's order; it may include the node itself. */
export interface PeerFile {
  readonly fileName: string;
  readonly peers: ReadonlyMap<string, PeerEntry>;
  /** Top-level `cluster_key` (cluster-key.ts checks it); exo's files have none. */
  readonly clusterKey?: string;
}

type Format = "json" | "yaml";

/** JSON for `.json`, YAML for `.yaml`/`.yml`; otherwise sniffed (a leading `{` means JSON). */
function formatOf(text: string, fileName: string): Format {
  const lower = fileName.toLowerCase();
  if (lower.endsWith(".json")) return "json";
  if (lower.endsWith(".yaml") || lower.endsWith(".yml")) return "yaml";
  return text.trimStart().startsWith("{") ? "json" : "yaml";
}

function decode(text: string, fileName: string): unknown {
  const format = formatOf(text, fileName);
  try {
    return format === "json" ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    // yaml's message continues with a source excerpt after the first line; keep just the reason and position.
    const reason = (err instanceof Error ? (err.message.split("\n")[0] ?? "") : String(err)).replace(/:\s*$/, "");
    throw new NodeError("E_CONFIG_INVALID", `${fileName}: invalid ${format.toUpperCase()}: ${reason}`, { cause: err });
  }
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return JSON.stringify(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Numbers may be written as numeric strings ("50051"), as exo's pydantic accepted them. */
function asNumber(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  return undefined;
}

/** Collects problems as "key.path: reason" so one bad file reports everything wrong with it. */
class Checker {
  readonly problems: string[] = [];
  fail(path: string, expected: string, got: unknown): undefined {
    this.problems.push(`${path}: expected ${expected}, got ${describe(got)}`);
    return undefined;
  }
  string(obj: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = obj[key];
    return typeof v === "string" && v.trim() !== "" ? v.trim() : this.fail(`${path}.${key}`, "a non-empty string", v);
  }
  number(
    obj: Record<string, unknown>,
    key: string,
    path: string,
    min: number,
    max: number,
    integer: boolean,
  ): number | undefined {
    const v = obj[key];
    const n = asNumber(v);
    const ok = n !== undefined && n >= min && n <= max && (!integer || Number.isInteger(n));
    if (ok) return n;
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `${min}-${max}`;
    return this.fail(`${path}.${key}`, `${integer ? "an integer" : "a number"} ${range}`, v);
  }
}

function checkCapabilities(c: Checker, value: unknown, path: string): DeviceCapabilities | undefined {
  if (!isObject(value)) return c.fail(path, "an object with model, chip, memory, flops", value);
  const model = c.string(value, "model", path);
  const chip = c.string(value, "chip", path);
  const memory = c.number(value, "memory", path, 0, Number.MAX_SAFE_INTEGER, true);
  const flops = value.flops;
  if (!isObject(flops)) return c.fail(`${path}.flops`, "an object with fp32, fp16, int8", flops);
  const max = Number.MAX_SAFE_INTEGER;
  const fp32 = c.number(flops, "fp32", `${path}.flops`, 0, max, false);
  const fp16 = c.number(flops, "fp16", `${path}.flops`, 0, max, false);
  const int8 = c.number(flops, "int8", `${path}.flops`, 0, max, false);
  if (model === undefined || chip === undefined || memory === undefined) return undefined;
  if (fp32 === undefined || fp16 === undefined || int8 === undefined) return undefined;
  return Object.freeze({ model, chip, memory, flops: Object.freeze({ fp32, fp16, int8 }) });
}

function checkPeer(c: Checker, value: unknown, path: string): PeerEntry | undefined {
  if (!isObject(value)) return c.fail(path, "an object with address and port", value);
  const address = c.string(value, "address", path);
  const port = c.number(value, "port", path, 1, 65535, true);
  const hasCaps = value.device_capabilities !== undefined && value.device_capabilities !== null;
  const caps = hasCaps ? checkCapabilities(c, value.device_capabilities, `${path}.device_capabilities`) : undefined;
  if (address === undefined || port === undefined || (hasCaps && caps === undefined)) return undefined;
  return Object.freeze(caps ? { address, port, deviceCapabilities: caps } : { address, port });
}

/**
 * Parse and validate a peer file's text; `fileName` picks the format and prefixes every message.
 * @throws NodeError E_CONFIG_INVALID naming the file, key path and reason
 */
export function parsePeerFile(text: string, fileName: string): PeerFile {
  if (text.trim() === "")
    throw new NodeError("E_CONFIG_INVALID", `${fileName}: the file is empty (expected a "peers" map)`);
  const twice = duplicatePeerId(text);
  if (twice)
    throw new NodeError(
      "E_CONFIG_INVALID",
      `${fileName}: peers.${twice.nodeId}: node id "${twice.nodeId}" is listed twice (again at line ${twice.line}); list each node once`,
    );
  const root = decode(text, fileName);
  const c = new Checker();
  const peers = new Map<string, PeerEntry>();
  const clusterKey =
    isObject(root) && root.cluster_key !== undefined && root.cluster_key !== null ? root.cluster_key : undefined;
  if (clusterKey !== undefined && typeof clusterKey !== "string") c.fail("cluster_key", "a string", clusterKey);
  if (!isObject(root)) c.fail("(root)", 'an object with a "peers" map', root);
  else if (!isObject(root.peers)) c.fail("peers", "a map of node id → {address, port}", root.peers);
  else {
    for (const [nodeId, value] of Object.entries(root.peers)) {
      const path = `peers.${nodeId}`;
      if (nodeId.trim() === "") c.problems.push(`${path}: node id must not be empty`);
      const entry = checkPeer(c, value, path);
      if (entry) peers.set(nodeId, entry);
    }
  }
  if (c.problems.length === 1) throw new NodeError("E_CONFIG_INVALID", `${fileName}: ${c.problems[0]}`);
  if (c.problems.length > 1) {
    throw new NodeError("E_CONFIG_INVALID", `${fileName}: ${c.problems.length} problems: ${c.problems.join("; ")}`);
  }
  return Object.freeze(typeof clusterKey === "string" ? { fileName, peers, clusterKey } : { fileName, peers });
}

/**
 * Read and parse a peer file from disk.
 * @throws NodeError E_CONFIG_READ when the file cannot be read, E_CONFIG_INVALID when its content is wrong
 */
export async function loadPeerFile(path: string): Promise<PeerFile> {
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new NodeError("E_CONFIG_READ", `cannot read peer file ${path}: ${reason}`, { cause: err });
  }
  return parsePeerFile(text, path);
}

/** The entries other than `selfId`, in file order: the peers this node should link to. */
export function peersOf(file: PeerFile, selfId: string): PeerSpec[] {
  const out: PeerSpec[] = [];
  for (const [nodeId, entry] of file.peers) if (nodeId !== selfId) out.push({ nodeId, ...entry });
  return out;
}

/** The node's own entry, when the file lists it (it may supply the node's port and capabilities). */
export function selfEntry(file: PeerFile, selfId: string): PeerEntry | undefined {
  return file.peers.get(selfId);
}

/** A canonical string of a peer file's content, so watchers can tell a real change from a re-save. */
export function peerFileKey(file: PeerFile): string {
  const peers = [...file.peers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(file.clusterKey === undefined ? peers : [peers, file.clusterKey]);
}
