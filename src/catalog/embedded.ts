// Where the embedded default model's files are: configs/default-model from sources; inside the compiled
// executable, the copy build.ts embedded (read-only; src/engine/embedded-assets.ts copies it out for MLX).
import { join } from "node:path";
import { embeddedPath, embeddedRoot } from "../embedded-root.ts";

/** Directory holding the embedded model's config.json, tokenizer and weights. */
export function embeddedModelDir(moduleDir: string = import.meta.dir): string {
  // build.ts embeds configs/default-model under Bun's embedded root by its folder name.
  const root = embeddedRoot(moduleDir);
  if (root !== undefined) return embeddedPath(root, "default-model");
  return join(moduleDir, "..", "..", "configs", "default-model");
}
