// `exo models`: the catalog with layers, size and what this node has downloaded.
import { defineCommand } from "citty";

export default defineCommand({
  meta: {
    name: "models",
    description:
      "List the model catalog: id, name, layers, size, download state on this node, whether this build runs it.",
  },
  args: {
    "models-dir": {
      type: "string",
      description: "Hugging Face hub cache to use (default $HF_HUB_CACHE or $HF_HOME/hub)",
    },
    json: { type: "boolean", description: "one JSON object per line instead of a table" },
  },
  async run({ args }) {
    const { loadCatalog } = await import("../catalog/catalog.ts");
    const { createDefaultModelStore } = await import("../download/model-store.ts");
    const { formatBytes } = await import("../download/progress.ts");
    const store = await createDefaultModelStore({ nodeId: "local", modelsDir: args["models-dir"] });
    const rows: string[][] = [["ID", "NAME", "LAYERS", "SIZE", "ON THIS NODE", "RUNS"]];
    for (const entry of loadCatalog().entries) {
      const s = await store.localState(entry);
      const state = s.downloaded
        ? entry.embedded
          ? "embedded"
          : "downloaded"
        : s.downloadedBytes > 0
          ? `${Math.floor(s.percentage)}%`
          : "-";
      if (args.json) {
        process.stdout.write(
          `${JSON.stringify({ id: s.id, name: s.name, layers: s.layers, size_bytes: s.totalBytes, downloaded: s.downloaded, downloaded_bytes: s.downloadedBytes, state, arch: entry.arch, runnable: entry.runnable })}\n`,
        );
        continue;
      }
      rows.push([
        s.id,
        s.name,
        String(s.layers ?? "?"),
        `${s.downloaded ? "" : "~"}${formatBytes(s.totalBytes)}`,
        state,
        entry.runnable ? "yes" : `no (${entry.arch})`,
      ]);
    }
    if (!args.json) process.stdout.write(formatTable(rows));
  },
});

function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  return `${rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")}\n`;
}
