// A node id listed twice in a peer file: JSON.parse keeps the last entry silently and YAML's own message does not
// say which key, so both formats are checked here (JSON is YAML's flow syntax) and the id is named.
import YAML from "yaml";

/** The first node id that appears twice under `peers`, with its line; undefined when none (or unparsable text). */
export function duplicatePeerId(text: string): { nodeId: string; line: number } | undefined {
  const doc = YAML.parseDocument(text, { uniqueKeys: false, keepSourceTokens: false });
  if (doc.errors.length > 0) return undefined;
  const peers = doc.get("peers", true);
  if (!YAML.isMap(peers)) return undefined;
  const seen = new Set<string>();
  for (const item of peers.items) {
    const key = YAML.isScalar(item.key) ? String(item.key.value) : String(item.key);
    if (seen.has(key)) {
      const offset = YAML.isNode(item.key) ? (item.key.range?.[0] ?? 0) : 0;
      return { nodeId: key, line: text.slice(0, offset).split("\n").length };
    }
    seen.add(key);
  }
  return undefined;
}
