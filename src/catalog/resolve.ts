// Turns what a user typed (catalog id, Hugging Face repo id, or a local model directory) into a model
// description with a source to fetch or read it from. Unknown names fail here, naming what was asked for.
import { basename, resolve as resolvePath } from "node:path";
import { NodeError } from "../errors.ts";
import { asModelId, type ModelId } from "../ids.ts";
import { findModel, isRepoId, loadCatalog, type Catalog } from "./catalog.ts";
import { embeddedModelDir } from "./embedded.ts";
import { hasConfigFile, readConfigFile } from "../models/spec/config-file.ts";
import { describeConfig } from "../models/spec/describe.ts";
import type { Quantization } from "../models/spec/quantization.ts";
import { parseQuantization } from "./quantization.ts";
import { closestIds } from "./suggest.ts";

export type ModelSource = { kind: "hub"; repo: string } | { kind: "local"; dir: string };

/** A model ready to be placed and fetched. `layers`/`arch` are undefined for a hub repo outside the catalog until its config.json is read. */
export interface ResolvedModel {
  id: ModelId;
  name: string;
  layers?: number;
  arch?: string;
  quantization: Quantization;
  sizeBytes?: number;
  /** Share of the parameters that are routed experts (Mixture-of-Experts), when known. */
  expertShare?: number;
  source: ModelSource;
}

/**
 * Resolves a model reference: catalog id, then catalog repo, then (only with `allowLocal`: the operator's own
 * `--models DIR` / `exo run DIR`) a local directory with config.json, then any Hugging Face repo id. Names from
 * peers and API clients never become paths, and their refusal says nothing about what exists on disk.
 * @throws NodeError E_MODEL_UNKNOWN naming the reference; E_WEIGHTS when a local config.json is unreadable.
 */
export async function resolveModelRef(
  ref: string,
  catalog: Catalog = loadCatalog(),
  opts: { allowLocal?: boolean } = {},
): Promise<ResolvedModel> {
  const entry = findModel(catalog, ref);
  if (entry) {
    const source: ModelSource = entry.repo
      ? { kind: "hub", repo: entry.repo }
      : { kind: "local", dir: embeddedModelDir() };
    const { id, name, layers, arch, quantization, sizeBytes, expertShare } = entry;
    const moe = expertShare ? { expertShare } : {};
    return { id: asModelId(id), name, layers, arch, quantization, sizeBytes, ...moe, source };
  }
  if (opts.allowLocal) {
    const dir = resolvePath(ref);
    if (await hasConfigFile(dir)) return describeLocalDir(dir);
  }
  if (isRepoId(ref)) {
    return { id: asModelId(ref), name: ref, quantization: parseQuantization(ref), source: { kind: "hub", repo: ref } };
  }
  const near = closestIds(
    ref,
    catalog.entries.map((e) => e.id),
  );
  const hint = near.length > 0 ? `; did you mean ${near.join(", ")}?` : "";
  throw new NodeError(
    "E_MODEL_UNKNOWN",
    opts.allowLocal
      ? `unknown model "${ref}": not a catalog id (see \`exo models\`), not a Hugging Face repo id (org/name), and not a directory with config.json${hint}`
      : `unknown model "${ref}": not a catalog id (see \`exo models\`), not a Hugging Face repo id (org/name), and not a model this node serves (--models)${hint}`,
  );
}

// --- internal ---

async function describeLocalDir(dir: string): Promise<ResolvedModel> {
  // The files on disk are measured instead of estimated from config.json (the store does that).
  const { sizeBytes: _estimate, ...described } = describeConfig(await readConfigFile(dir));
  return {
    id: asModelId(dir),
    name: basename(dir),
    quantization: "fp32",
    ...described,
    source: { kind: "local", dir },
  };
}
