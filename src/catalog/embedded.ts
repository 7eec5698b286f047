// Where the embedded default model's files are. From sources that is configs/default-model;
// the packaging step adapts this one function for the compiled binary.
import { join } from "node:path";

/** Directory holding the embedded model's config.json, tokenizer and weights. */
export function embeddedModelDir(): string {
  return join(import.meta.dir, "..", "..", "configs", "default-model");
}
