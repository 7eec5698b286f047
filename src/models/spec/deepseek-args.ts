// What DeepSeek V2/V3 (and Kimi K2, the same network) add to config.json, parsed once and checked (pure, no
// MLX): latent-attention sizes, the expert layout and the routing rule. Anything this build cannot run is
// refused here, naming the key.
import { NodeError } from "../../errors.ts";

/** How the router picks experts: V2's softmax top-k (optionally within the best groups), V3's noaux_tc. */
export type RoutingMethod = "greedy" | "group_limited_greedy" | "noaux_tc";

export interface RoutingArgs {
  method: RoutingMethod;
  nExperts: number;
  topK: number;
  /** Experts are split into nGroup equal groups; only the best topkGroup groups may be picked from. */
  nGroup: number;
  topkGroup: number;
  /** Renormalise the picked weights to sum 1 (only when topK > 1, as DeepSeek's code does). */
  normTopkProb: boolean;
  routedScalingFactor: number;
}

export interface DeepseekArgs {
  /** Rank of the query compression; undefined = a plain q_proj (V2-Lite). */
  qLoraRank?: number;
  kvLoraRank: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
  /** Undefined when the model has no routed experts (every layer dense). */
  routing?: RoutingArgs;
  nSharedExperts: number;
  moeIntermediateSize: number;
  firstKDenseReplace: number;
  moeLayerFreq: number;
  /** Multi-token-prediction layers stored after the last layer (V3: 1, at index 61); never run here. */
  mtpLayers: number;
}

/** model_type values served by the DeepSeek code (Kimi K2 is DeepSeek V3's network with other sizes). */
export const DEEPSEEK_MODEL_TYPES: readonly string[] = ["deepseek_v2", "deepseek_v3", "kimi_k2"];

type Json = Record<string, unknown>;

function int(c: Json, key: string, fallback?: number): number {
  const v = c[key];
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v;
  if (v === undefined && fallback !== undefined) return fallback;
  throw new NodeError("E_WEIGHTS", `config.json: "${key}" must be a non-negative integer, got ${JSON.stringify(v)}`);
}

/** @throws E_WEIGHTS (missing or inconsistent sizes), E_MODEL_UNSUPPORTED (a routing rule or activation we do not run). */
export function parseDeepseekArgs(config: Json): DeepseekArgs {
  const v3Style = config.model_type !== "deepseek_v2";
  const act = config.hidden_act ?? "silu";
  if (act !== "silu")
    throw new NodeError("E_MODEL_UNSUPPORTED", `config.json: hidden_act "${String(act)}" (silu only)`);
  const qLora = config.q_lora_rank;
  const args: DeepseekArgs = {
    kvLoraRank: int(config, "kv_lora_rank"),
    qkNopeHeadDim: int(config, "qk_nope_head_dim"),
    qkRopeHeadDim: int(config, "qk_rope_head_dim"),
    vHeadDim: int(config, "v_head_dim"),
    nSharedExperts: int(config, "n_shared_experts", 0) || 0,
    moeIntermediateSize: int(config, "moe_intermediate_size", 0),
    firstKDenseReplace: int(config, "first_k_dense_replace", 0),
    moeLayerFreq: Math.max(1, int(config, "moe_layer_freq", 1)),
    mtpLayers: int(config, "num_nextn_predict_layers", 0),
  };
  if (config.n_shared_experts === null) args.nSharedExperts = 0;
  if (qLora !== null && qLora !== undefined) args.qLoraRank = int(config, "q_lora_rank");
  if (args.qkRopeHeadDim % 2 !== 0) throw new NodeError("E_WEIGHTS", `config.json: qk_rope_head_dim must be even`);
  const nExperts = config.n_routed_experts;
  if (nExperts !== null && nExperts !== undefined) args.routing = parseRouting(config, v3Style);
  return args;
}

function parseRouting(config: Json, v3Style: boolean): RoutingArgs {
  const method = String(config.topk_method ?? (v3Style ? "noaux_tc" : "greedy"));
  const scoring = String(config.scoring_func ?? (v3Style ? "sigmoid" : "softmax"));
  const known: Record<string, string> = { greedy: "softmax", group_limited_greedy: "softmax", noaux_tc: "sigmoid" };
  if (known[method] === undefined || known[method] !== scoring) {
    throw new NodeError(
      "E_MODEL_UNSUPPORTED",
      `config.json: routing topk_method "${method}" with scoring_func "${scoring}" is not supported ` +
        `(supported: greedy/softmax, group_limited_greedy/softmax, noaux_tc/sigmoid)`,
    );
  }
  const r: RoutingArgs = {
    method: method as RoutingMethod,
    nExperts: int(config, "n_routed_experts"),
    topK: int(config, "num_experts_per_tok"),
    nGroup: Math.max(1, int(config, "n_group", 1)),
    topkGroup: Math.max(1, int(config, "topk_group", 1)),
    normTopkProb: config.norm_topk_prob === true,
    routedScalingFactor: typeof config.routed_scaling_factor === "number" ? config.routed_scaling_factor : 1,
  };
  if (r.nExperts % r.nGroup !== 0 || r.topkGroup > r.nGroup)
    throw new NodeError(
      "E_WEIGHTS",
      `config.json: ${r.nExperts} experts cannot form ${r.nGroup} groups (keep ${r.topkGroup})`,
    );
  if (r.topK < 1 || r.topK > (r.nExperts / r.nGroup) * (r.method === "greedy" ? r.nGroup : r.topkGroup))
    throw new NodeError(
      "E_WEIGHTS",
      `config.json: num_experts_per_tok ${r.topK} does not fit the experts it may pick from`,
    );
  return r;
}

/** Whether layer `i` routes through experts (else it is a dense SwiGLU of intermediate_size). */
export function isMoeLayer(d: DeepseekArgs, i: number): boolean {
  return d.routing !== undefined && i >= d.firstKDenseReplace && i % d.moeLayerFreq === 0;
}

/** Cached values per layer per token of the absorbed form: the latent and the one shared rope key (576 in V3). */
export function latentCacheValuesPerToken(d: DeepseekArgs): number {
  return d.kvLoraRank + d.qkRopeHeadDim;
}

/** Cached values per layer per token if keys and values were expanded per head (what the naive form would keep). */
export function expandedCacheValuesPerToken(d: DeepseekArgs, heads: number): number {
  return heads * (d.qkNopeHeadDim + d.qkRopeHeadDim + d.vHeadDim);
}
