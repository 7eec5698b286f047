// `exo ps` as text: one block per placed model, one row per node with its layers, memory and progress. Pure.

/** GET /v1/placements as the API sends it. */
export interface PlacementsJson {
  placements: {
    model: string;
    n_layers: number;
    /** ready, degraded or re-placing (absent from nodes before issue 17). */
    state?: string;
    reason?: string | null;
    requests_in_flight: number;
    stages: {
      node_id: string;
      layer_start: number;
      layer_end: number;
      memory_mb: number | null;
      phase: string | null;
      fraction: number | null;
    }[];
  }[];
}

export function renderPlacements(json: PlacementsJson): string {
  if (json.placements.length === 0) return "no models placed on the cluster (a request or `exo run MODEL` places one)";
  const rows: string[][] = [["MODEL", "STATE", "NODE", "LAYERS", "MEMORY", "STATUS", "REQUESTS"]];
  const notes: string[] = [];
  for (const p of json.placements) {
    if (p.reason && p.state !== "ready") notes.push(`${p.model} is ${p.state}: ${p.reason}`);
    p.stages.forEach((s, i) => {
      const layers = `[${s.layer_start}, ${s.layer_end}) of ${p.n_layers}`;
      const memory = s.memory_mb === null ? "?" : `${(s.memory_mb / 1024).toFixed(1)} GB`;
      rows.push([
        i === 0 ? p.model : "",
        i === 0 ? (p.state ?? "") : "",
        s.node_id,
        layers,
        memory,
        status(s.phase, s.fraction),
        i === 0 ? String(p.requests_in_flight) : "",
      ]);
    });
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join("  ")
        .trimEnd(),
    )
    .concat(notes)
    .join("\n");
}

function status(phase: string | null, fraction: number | null): string {
  if (phase === null) return "placed";
  if (phase === "ready") return "ready";
  return `${phase} ${Math.round((fraction ?? 0) * 100)}%`;
}
