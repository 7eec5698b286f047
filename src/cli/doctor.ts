// `exo doctor`: check the links to every node of the peer file, as the seed's test report did, plus
// MLX's system libraries. Prints a readable report; exits non-zero when a check fails.
import { defineCommand } from "citty";

export default defineCommand({
  meta: {
    name: "doctor",
    description:
      "Diagnose links to every node in the peer file: connect, handshake, health round trips, topology agreement.",
  },
  args: {
    config: {
      type: "string",
      description: "peer file (YAML or exo's JSON) listing the nodes to check",
      required: true,
    },
    count: { type: "string", description: "health checks per node (default 10)" },
    "timeout-ms": { type: "string", description: "deadline of each step (default 5000)" },
    "cluster-key-file": {
      type: "string",
      description: "file holding the cluster key (overrides EXO_CLUSTER_KEY and the peer file's cluster_key)",
    },
  },
  async run({ args }) {
    const { parseDoctorOptions } = await import("../config/node-options.ts");
    const { loadPeerFile } = await import("../config/peer-file.ts");
    const { loadClusterKey } = await import("../config/cluster-key.ts");
    const { runDoctor, formatDoctorReport } = await import("../node/doctor.ts");
    const { missingMlxLibraries } = await import("../node/system-libs.ts");
    const o = parseDoctorOptions(args);
    const file = await loadPeerFile(args.config);
    const clusterKey = await loadClusterKey({
      keyFile: o.clusterKeyFile,
      env: o.clusterKey,
      peerFile: { key: file.clusterKey, fileName: file.fileName },
    });
    const targets = [...file.peers].map(([nodeId, p]) => ({ nodeId, address: p.address, port: p.port }));
    process.stdout.write(`exo doctor: ${targets.length} nodes from ${file.fileName}\n`);
    const report = await runDoctor({
      ...o,
      clusterKey,
      targets,
      collections: 3,
      missingLibraries: await missingMlxLibraries(),
    });
    process.stdout.write(formatDoctorReport(report));
    if (!report.ok) process.exitCode = 1;
  },
});
