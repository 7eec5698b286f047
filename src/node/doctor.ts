// `exo doctor`'s checks, as the seed's test report did them, against every node of a peer file:
// connect + handshake, N health checks on one unchanged connection, repeated topology collections
// that agree and show links both ways, the same nodes seen from every node, and MLX's system libraries.
import { errorCode } from "../errors.ts";
import type { Link } from "../net/link.ts";
import { openProbe } from "../net/probe.ts";
import { parseTopologyJson, type Topology } from "../topology/graph.ts";

export interface CheckResult {
  name: string;
  ok: boolean;
  /** Passes, but the operator should act (printed WARN). */
  warn?: boolean;
  detail: string;
}

export interface DoctorTarget {
  nodeId: string;
  address: string;
  port: number;
}

export interface DoctorOptions {
  targets: DoctorTarget[];
  /** Health checks per node (the seed report did 10). */
  count: number;
  /** Topology collections per node (the seed report did 3). */
  collections: number;
  timeoutMs: number;
  probeId: string;
  /** Missing MLX libraries (empty when all present), or undefined when the check does not apply. */
  missingLibraries?: string[];
  /** The cluster key and where it came from; undefined = keyless links (a WARN). */
  clusterKey?: { bytes: Uint8Array; source: string };
}

export interface DoctorReport {
  sections: { title: string; checks: CheckResult[] }[];
  ok: boolean;
}

const fmt = (ms: number) => `${ms.toFixed(2)} ms`;
const nodeSet = (t: Topology) => [...t.nodes.keys()].join(", ");

async function checkNode(t: DoctorTarget, o: DoctorOptions): Promise<{ checks: CheckResult[]; topology?: Topology }> {
  const checks: CheckResult[] = [];
  const fail = (name: string, err: unknown) =>
    checks.push({ name, ok: false, detail: `${errorCode(err)}: ${err instanceof Error ? err.message : String(err)}` });
  let link: Link;
  const t0 = performance.now();
  try {
    link = await openProbe(t.address, t.port, {
      probeId: o.probeId,
      expect: t.nodeId,
      timeoutMs: o.timeoutMs,
      clusterKey: o.clusterKey?.bytes,
    });
  } catch (err) {
    fail("connect + handshake", err);
    return { checks };
  }
  const hello = link.peer!;
  const caps = hello.capabilities
    ? `, ${hello.capabilities.model} / ${hello.capabilities.chip} / ${hello.capabilities.memory} MB`
    : "";
  const sealed = link.sealed ? ", authenticated, sealed" : "";
  checks.push({
    name: "connect + handshake",
    ok: true,
    detail: `${fmt(performance.now() - t0)}, exo ${hello.version}, protocol ${hello.protocol}${sealed}${caps}`,
  });
  try {
    const port = link.conn.localPort;
    const latencies: number[] = [];
    try {
      for (let i = 0; i < o.count; i++) {
        const s = performance.now();
        await link.request("HEALTH", {}, undefined, o.timeoutMs);
        latencies.push(performance.now() - s);
      }
      latencies.sort((x, y) => x - y);
      const same = !link.conn.closed && link.conn.localPort === port;
      const median = latencies[Math.floor(latencies.length / 2)] ?? 0;
      checks.push({
        name: `${o.count} health checks`,
        ok: same,
        detail: same
          ? `one connection (local port ${port}), median ${fmt(median)}, max ${fmt(latencies.at(-1) ?? 0)}`
          : "the connection changed between calls",
      });
    } catch (err) {
      fail(`${o.count} health checks`, err);
    }
    const views: Topology[] = [];
    try {
      for (let i = 0; i < o.collections; i++) {
        const answer = await link.request("TOPOLOGY_REQ", { visited: [], max_depth: 4 }, undefined, o.timeoutMs);
        views.push(parseTopologyJson(answer.fields.topology));
      }
    } catch (err) {
      fail(`${o.collections} topology collections`, err);
      return { checks };
    }
    const first = views[0]!;
    const agree = views.every((v) => nodeSet(v) === nodeSet(first) && v.links.length === first.links.length);
    checks.push({
      name: `${o.collections} topology collections`,
      ok: agree,
      detail: agree
        ? `${first.nodes.size} nodes, ${first.links.length} links each time`
        : `they differ: ${views.map(nodeSet).join(" | ")}`,
    });
    const has = new Set(first.links.map((l) => `${l.fromId} --> ${l.toId}`));
    const oneWay = first.links
      .filter((l) => !has.has(`${l.toId} --> ${l.fromId}`))
      .map((l) => `${l.fromId} --> ${l.toId}`);
    checks.push({
      name: "links both ways",
      ok: oneWay.length === 0 && first.links.length > 0,
      detail:
        oneWay.length > 0
          ? `no way back for ${oneWay.join(", ")}`
          : first.links.length === 0
            ? "no links: the node sees no peer"
            : [...has].join(", "),
    });
    return { checks, topology: first };
  } finally {
    link.close("doctor done");
  }
}

/** Run every check; never throws (a failure is a failed check). */
export async function runDoctor(o: DoctorOptions): Promise<DoctorReport> {
  const results = await Promise.all(o.targets.map((t) => checkNode(t, o)));
  const sections = o.targets.map((t, i) => ({
    title: `${t.nodeId}  ${t.address}:${t.port}`,
    checks: results[i]!.checks,
  }));
  const seen = o.targets
    .map((t, i) => [t.nodeId, results[i]!.topology] as const)
    .filter((x): x is readonly [string, Topology] => x[1] !== undefined);
  const sets = new Set(seen.map(([, t]) => nodeSet(t)));
  const cluster: CheckResult[] = [
    {
      name: "every node answers",
      ok: seen.length === o.targets.length,
      detail: `${seen.length} of ${o.targets.length}`,
    },
    {
      name: "same nodes seen from every node",
      ok: sets.size === 1,
      detail:
        sets.size === 1
          ? [...sets][0]!
          : sets.size === 0
            ? "no node answered"
            : seen.map(([id, t]) => `${id} sees ${nodeSet(t)}`).join("; "),
    },
  ];
  cluster.push(
    o.clusterKey
      ? {
          name: "cluster key",
          ok: true,
          detail: `links authenticated and sealed (AES-256-GCM), key from ${o.clusterKey.source}`,
        }
      : {
          name: "cluster key",
          ok: true,
          warn: true,
          detail:
            "none: links are neither authenticated nor encrypted (peers admitted by address only); run `exo keygen` and add `cluster_key: KEY` to the peer file of every node",
        },
  );
  sections.push({ title: "cluster", checks: cluster });
  if (o.missingLibraries) {
    const missing = o.missingLibraries;
    sections.push({
      title: "system",
      checks: [
        {
          name: "MLX libraries",
          ok: missing.length === 0,
          detail:
            missing.length === 0
              ? "liblapack.so.3, libopenblas.so.0 found"
              : `missing ${missing.join(", ")}: sudo apt-get install -y liblapack3 libopenblas0-pthread`,
        },
      ],
    });
  }
  return { sections, ok: sections.every((s) => s.checks.every((c) => c.ok)) };
}

/** The readable report. */
export function formatDoctorReport(r: DoctorReport): string {
  const width = Math.max(...r.sections.flatMap((s) => s.checks.map((c) => c.name.length)));
  const lines: string[] = [];
  for (const s of r.sections) {
    lines.push(s.title);
    for (const c of s.checks)
      lines.push(`  ${c.ok ? (c.warn ? "WARN" : "PASS") : "FAIL"}  ${c.name.padEnd(width)}  ${c.detail}`);
  }
  const all = r.sections.flatMap((s) => s.checks);
  const failed = all.filter((c) => !c.ok).length;
  const warned = all.filter((c) => c.ok && c.warn).length;
  const warnings = warned === 0 ? "" : ` (${warned} warning${warned === 1 ? "" : "s"})`;
  lines.push(
    failed === 0
      ? `result: all ${all.length} checks passed${warnings}`
      : `result: ${failed} of ${all.length} checks failed${warnings}`,
  );
  return `${lines.join("\n")}\n`;
}
