// The fields of the cluster's wire messages (PREPARE, STATUS, PROMPT, TENSOR, TOKEN, END, ERROR) and
// their parsers: untrusted JSON from a peer → typed values (NodeError E_PROTOCOL_PAYLOAD when malformed).
import { asModelId, asNodeId, asRequestId, type ModelId, type NodeId, type RequestId } from "../ids.ts";
import { NodeError, type ErrorCode } from "../errors.ts";
import type { SamplingParams } from "../engine/types.ts";
import { parsePlan, type Plan } from "../topology/placement.ts";

export type { Plan, Stage as PlanStage } from "../topology/placement.ts";
export { parsePlan };

/** What every stage needs to route one request; carried by PROMPT and every TENSOR. */
export interface RouteContext {
  requestId: RequestId;
  coordinator: NodeId;
  plan: Plan;
  sampling: SamplingParams;
  maxTokens: number;
  eosIds: number[];
}

export interface TokenFields {
  requestId: RequestId;
  token: number;
  /** 0-based position of this token among the generated ones. */
  index: number;
}

export interface ErrorFields {
  requestId: RequestId;
  code: ErrorCode;
  message: string;
  nodeId: NodeId;
}

/** STATUS: a stage's progress while preparing its shard (download, then load). */
export interface StatusFields {
  nodeId: NodeId;
  modelId: ModelId;
  phase: "download" | "load" | "ready";
  /** 0..1 within the phase. */
  fraction: number;
  detail?: string;
  /** During downloads: exo's RepoProgressEvent dict, so every node's /v1/download/progress shows the whole cluster. */
  progress?: Record<string, unknown>;
  /** A coordinator's load (load-report.ts); absent from old peers and from STATUS sent while preparing. */
  load?: LoadFields;
}

/** STATUS `load`: what a coordinator has queued and running, and its engine's decode batches. */
export interface LoadFields {
  queued: number;
  running: number;
  /** Decode steps in the engine's last batched forward (absent: the engine does not batch). */
  lastBatch?: number;
  peakBatch?: number;
}

/** `load` of a STATUS from an untrusted peer; anything malformed reads as absent rather than failing the STATUS. */
export function parseLoad(v: unknown): LoadFields | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const count = (x: unknown) => (Number.isInteger(x) && (x as number) >= 0 ? (x as number) : undefined);
  const queued = count(o.queued);
  const running = count(o.running);
  if (queued === undefined || running === undefined) return undefined;
  const lastBatch = count(o.lastBatch);
  const peakBatch = count(o.peakBatch);
  return {
    queued,
    running,
    ...(lastBatch === undefined ? {} : { lastBatch }),
    ...(peakBatch === undefined ? {} : { peakBatch }),
  };
}

function bad(what: string): never {
  throw new NodeError("E_PROTOCOL_PAYLOAD", `cluster message: ${what}`);
}

function str(v: unknown, name: string): string {
  return typeof v === "string" && v.length > 0 ? v : bad(`${name} must be a non-empty string`);
}

function requestIdOf(f: Record<string, unknown>): RequestId {
  return asRequestId(str(f.requestId, "requestId"));
}

function int(v: unknown, name: string): number {
  return Number.isInteger(v) && (v as number) >= 0 ? (v as number) : bad(`${name} must be a non-negative integer`);
}

function num(v: unknown, name: string): number {
  return typeof v === "number" && Number.isFinite(v) ? v : bad(`${name} must be a number`);
}

function obj(v: unknown, name: string): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : bad(`${name} must be an object`);
}

function intArray(v: unknown, name: string): number[] {
  if (!Array.isArray(v)) bad(`${name} must be an array`);
  return v.map((x, i) => int(x, `${name}[${i}]`));
}

export function parseSampling(v: unknown): SamplingParams {
  const o = obj(v, "sampling");
  const s: SamplingParams = {
    temperature: num(o.temperature, "sampling.temperature"),
    topP: num(o.topP, "sampling.topP"),
    topK: int(o.topK, "sampling.topK"),
  };
  if (o.seed !== undefined && o.seed !== null) s.seed = num(o.seed, "sampling.seed");
  if (o.startIndex !== undefined && o.startIndex !== null) s.startIndex = int(o.startIndex, "sampling.startIndex");
  return s;
}

export function parseRoute(f: Record<string, unknown>): RouteContext {
  return {
    requestId: requestIdOf(f),
    coordinator: asNodeId(str(f.coordinator, "coordinator")),
    plan: parsePlan(f.plan),
    sampling: parseSampling(f.sampling),
    maxTokens: int(f.maxTokens, "maxTokens"),
    eosIds: intArray(f.eosIds, "eosIds"),
  };
}

/** The JSON fields of a route (spread into PROMPT and TENSOR). */
export function routeFields(r: RouteContext): Record<string, unknown> {
  return {
    requestId: r.requestId,
    coordinator: r.coordinator,
    plan: r.plan,
    sampling: r.sampling,
    maxTokens: r.maxTokens,
    eosIds: r.eosIds,
  };
}

export function parseTokens(f: Record<string, unknown>): number[] {
  const tokens = intArray(f.tokens, "tokens");
  return tokens.length > 0 ? tokens : bad("tokens must not be empty");
}

export function parseToken(f: Record<string, unknown>): TokenFields {
  return { requestId: requestIdOf(f), token: int(f.token, "token"), index: int(f.index, "index") };
}

export function parseRequestId(f: Record<string, unknown>): RequestId {
  return requestIdOf(f);
}

export function parseError(f: Record<string, unknown>): ErrorFields {
  return {
    requestId: requestIdOf(f),
    code: str(f.code, "code") as ErrorCode,
    message: String(f.message ?? ""),
    nodeId: asNodeId(String(f.nodeId ?? "?")),
  };
}

export function parseStatus(f: Record<string, unknown>): StatusFields {
  const phase = f.phase;
  if (phase !== "download" && phase !== "load" && phase !== "ready") bad("phase must be download, load or ready");
  const s: StatusFields = {
    nodeId: asNodeId(str(f.nodeId, "nodeId")),
    modelId: asModelId(str(f.modelId, "modelId")),
    phase,
    fraction: num(f.fraction, "fraction"),
  };
  if (typeof f.detail === "string") s.detail = f.detail;
  if (typeof f.progress === "object" && f.progress !== null && !Array.isArray(f.progress))
    s.progress = f.progress as Record<string, unknown>;
  const load = parseLoad(f.load);
  if (load) s.load = load;
  return s;
}

/** Distinct node ids of a plan, in stage order. */
export function planNodes(plan: Plan): NodeId[] {
  return [...new Set(plan.stages.map((s) => s.nodeId))];
}
