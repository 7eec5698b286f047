// "Did you mean": the catalog ids closest to a mistyped model id, case-insensitive, by edit distance. Pure.

/** Up to `max` of `ids` within a small edit distance of `ref` (closest first, then alphabetical). */
export function closestIds(ref: string, ids: readonly string[], max = 3): string[] {
  const wanted = ref.toLowerCase();
  // Short ids tolerate 2 edits, longer ones about a third of their length ("lama-3.2-1b", "Qwen-2.5-7B").
  const limit = Math.max(2, Math.floor(wanted.length / 3));
  return ids
    .map((id) => ({ id, d: editDistance(wanted, id.toLowerCase()) }))
    .filter((c) => c.d <= limit)
    .sort((a, b) => a.d - b.d || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, max)
    .map((c) => c.id);
}

/** Levenshtein distance (insert, delete, substitute: 1 each), two rows of memory. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
