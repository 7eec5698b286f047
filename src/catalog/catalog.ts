// The model catalog: configs/models.yaml (embedded in the executable by the import below), validated
// into typed entries, and lookup of a model by catalog id or Hugging Face repo id. Pure apart from the embed.
import catalogData from "../../configs/models.yaml";
import { NodeError } from "../errors.ts";
import { isSupportedModelType } from "../models/spec/architectures.ts";
import type { Quantization } from "../models/spec/quantization.ts";

/** One model the node knows by name. `repo` is absent only for the embedded default model. */
export interface CatalogEntry {
  id: string;
  name: string;
  /** Hugging Face repo id ("org/name"). */
  repo?: string;
  /** Transformer blocks (config.json num_hidden_layers); placement splits [0, layers). */
  layers: number;
  /** config.json model_type. */
  arch: string;
  quantization: Quantization;
  /** Approximate bytes of all weight files, known before anything is downloaded. */
  sizeBytes: number;
  /** Mixture-of-Experts: share of the parameters that are routed experts (CPU nodes keep those packed). */
  expertShare?: number;
  /** True for the default model shipped inside the executable. */
  embedded: boolean;
  /** Whether this build can run it: its arch is in the model registry (src/models/spec/architectures.ts). */
  runnable: boolean;
}

export interface Catalog {
  entries: readonly CatalogEntry[];
  byId: ReadonlyMap<string, CatalogEntry>;
  /** Keyed by lower-cased repo id: Hugging Face treats repo ids case-insensitively. */
  byRepo: ReadonlyMap<string, CatalogEntry>;
}

/** The id of the model used when none is named. */
export const DEFAULT_MODEL_ID = "exo-tiny-chat";

/**
 * Validates catalog data (the parsed YAML) into a frozen Catalog.
 * @throws NodeError E_CONFIG_INVALID naming the entry and key that is wrong.
 */
export function parseCatalog(data: unknown, source = "configs/models.yaml"): Catalog {
  const list = (data as { models?: unknown } | null)?.models;
  if (!Array.isArray(list)) throw invalid(source, "models", "expected a list of models");
  const entries = list.map((raw, i) => parseEntry(raw, `${source}: models[${i}]`));
  const byId = new Map<string, CatalogEntry>();
  const byRepo = new Map<string, CatalogEntry>();
  for (const entry of entries) {
    if (byId.has(entry.id)) throw invalid(source, `models.${entry.id}`, "duplicate id");
    byId.set(entry.id, entry);
    if (entry.repo && !byRepo.has(entry.repo.toLowerCase())) byRepo.set(entry.repo.toLowerCase(), entry);
  }
  return Object.freeze({ entries: Object.freeze(entries), byId, byRepo });
}

let embedded: Catalog | undefined;

/** The catalog shipped with the executable (parsed once). */
export function loadCatalog(): Catalog {
  embedded ??= parseCatalog(catalogData);
  return embedded;
}

/** Finds a model by catalog id, then by Hugging Face repo id; undefined when neither matches. */
export function findModel(catalog: Catalog, ref: string): CatalogEntry | undefined {
  return catalog.byId.get(ref) ?? catalog.byRepo.get(ref.toLowerCase());
}

/** True for a string shaped like a Hugging Face repo id ("org/name"). */
export function isRepoId(ref: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(ref) && !ref.includes("..");
}

// --- internal ---

function parseEntry(raw: unknown, where: string): CatalogEntry {
  if (typeof raw !== "object" || raw === null) throw invalid(where, "", "expected a mapping");
  const r = raw as Record<string, unknown>;
  const str = (key: string): string => {
    const v = r[key];
    if (typeof v !== "string" || v === "")
      throw invalid(where, key, `expected a non-empty string, got ${JSON.stringify(v)}`);
    return v;
  };
  const int = (key: string): number => {
    const v = r[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
      throw invalid(where, key, `expected a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const share = (v: unknown): number => {
    if (typeof v !== "number" || !(v > 0 && v < 1))
      throw invalid(where, "expert_share", `expected a number in (0, 1), got ${JSON.stringify(v)}`);
    return v;
  };
  const isEmbedded = r.embedded === true;
  const repo = isEmbedded ? undefined : str("repo");
  if (repo !== undefined && !isRepoId(repo))
    throw invalid(where, "repo", `expected "org/name", got ${JSON.stringify(repo)}`);
  const quantization = str("quantization");
  if (!/^(\d{1,2}bit|bf16|fp16|fp32)$/.test(quantization))
    throw invalid(where, "quantization", `unknown value ${quantization}`);
  return Object.freeze({
    id: str("id"),
    name: str("name"),
    ...(repo === undefined ? {} : { repo }),
    layers: int("layers"),
    arch: str("arch"),
    runnable: isSupportedModelType(str("arch")),
    quantization: quantization as Quantization,
    sizeBytes: int("size_bytes"),
    ...(r.expert_share === undefined ? {} : { expertShare: share(r.expert_share) }),
    embedded: isEmbedded,
  });
}

function invalid(where: string, key: string, reason: string): NodeError {
  return new NodeError("E_CONFIG_INVALID", `${where}${key ? `.${key}` : ""}: ${reason}`);
}
