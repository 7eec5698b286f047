// The node ↔ runner conversation as frames of the wire codec: which message type carries which call.
// Pure: maps typed calls and replies to OutgoingMessage and back; src/engine/README.md has the table.
import { NodeError, type ErrorCode } from "../errors.ts";
import type { OutgoingMessage } from "../protocol/frame.ts";
import { decodeTensor, encodeTensor } from "../protocol/tensor.ts";
import type { Message } from "../protocol/types.ts";
import type { EngineBatchStats, SamplingParams, ShardSpec, StageInput, StageOutput } from "./types.ts";

/** A call from the node to its runner; `id` pairs it with its reply. */
export type RunnerCall =
  | { op: "load"; id: number; shard: ShardSpec }
  | { op: "step"; id: number; requestId: string; input: StageInput; sampling: SamplingParams; stages?: number }
  | { op: "end"; id: number; requestId: string }
  | { op: "health"; id: number };

/** A call before the client numbers it. */
export type RunnerCallBody = RunnerCall extends infer C ? (C extends RunnerCall ? Omit<C, "id"> : never) : never;

/** What the runner sends back; `hello` is unsolicited, once, when the runner is ready. */
export type RunnerReply =
  | { kind: "hello"; pid: number; engine: string }
  | { kind: "progress"; id: number; fraction: number; detail?: string }
  | { kind: "ok"; id: number }
  | { kind: "output"; id: number; output: StageOutput }
  | { kind: "health"; id: number; liveRequests: number; loaded: ShardSpec | null; batch?: EngineBatchStats }
  | { kind: "error"; id: number; code: ErrorCode; message: string };

export function encodeRunnerCall(call: RunnerCall): OutgoingMessage {
  switch (call.op) {
    case "load":
      return { type: "PREPARE", fields: { id: call.id, shard: call.shard } };
    case "end":
      return { type: "END", fields: { id: call.id, requestId: call.requestId } };
    case "health":
      return { type: "HEALTH", fields: { id: call.id } };
    case "step": {
      const head = {
        id: call.id,
        requestId: call.requestId,
        sampling: call.sampling,
        ...(call.stages === undefined ? {} : { stages: call.stages }),
      };
      if (call.input.kind === "tokens") return { type: "PROMPT", fields: { ...head, tokens: call.input.tokens } };
      const { fields, body } = encodeTensor(call.input.tensor);
      return { type: "TENSOR", fields: { ...head, ...fields }, body };
    }
  }
}

/** @throws NodeError E_PROTOCOL_PAYLOAD when the frame is not a well-formed call. */
export function decodeRunnerCall(msg: Message): RunnerCall {
  const f = msg.fields;
  const id = int(f.id, "id");
  switch (msg.type) {
    case "PREPARE":
      return { op: "load", id, shard: shardOf(f.shard) };
    case "END":
      return { op: "end", id, requestId: str(f.requestId, "requestId") };
    case "HEALTH":
      return { op: "health", id };
    case "PROMPT":
    case "TENSOR": {
      const requestId = str(f.requestId, "requestId");
      const sampling = samplingOf(f.sampling);
      const input: StageInput =
        msg.type === "PROMPT"
          ? { kind: "tokens", tokens: intArray(f.tokens, "tokens") }
          : { kind: "hidden", tensor: decodeTensor(f, msg.body) };
      return {
        op: "step",
        id,
        requestId,
        input,
        sampling,
        ...(f.stages === undefined ? {} : { stages: int(f.stages, "stages") }),
      };
    }
    default:
      throw new NodeError("E_PROTOCOL_PAYLOAD", `the runner takes no ${msg.type} frames`);
  }
}

export function encodeRunnerReply(reply: RunnerReply): OutgoingMessage {
  switch (reply.kind) {
    case "hello":
      return { type: "HELLO", fields: { pid: reply.pid, engine: reply.engine } };
    case "progress":
      return { type: "STATUS", fields: { id: reply.id, fraction: reply.fraction, detail: reply.detail } };
    case "ok":
      return { type: "OK", fields: { id: reply.id } };
    case "health":
      return {
        type: "HEALTH_OK",
        fields: {
          id: reply.id,
          liveRequests: reply.liveRequests,
          loaded: reply.loaded,
          ...(reply.batch ? { batch: reply.batch } : {}),
        },
      };
    case "error":
      return { type: "ERROR", fields: { id: reply.id, code: reply.code, message: reply.message } };
    case "output": {
      if (reply.output.kind === "token") return { type: "TOKEN", fields: { id: reply.id, token: reply.output.token } };
      const { fields, body } = encodeTensor(reply.output.tensor);
      return { type: "TENSOR", fields: { id: reply.id, ...fields }, body };
    }
  }
}

/** @throws NodeError E_PROTOCOL_PAYLOAD when the frame is not a well-formed reply. */
export function decodeRunnerReply(msg: Message): RunnerReply {
  const f = msg.fields;
  if (msg.type === "HELLO") return { kind: "hello", pid: int(f.pid, "pid"), engine: str(f.engine, "engine") };
  const id = int(f.id, "id");
  switch (msg.type) {
    case "STATUS":
      return {
        kind: "progress",
        id,
        fraction: num(f.fraction, "fraction"),
        detail: typeof f.detail === "string" ? f.detail : undefined,
      };
    case "OK":
      return { kind: "ok", id };
    case "HEALTH_OK":
      return {
        kind: "health",
        id,
        liveRequests: int(f.liveRequests, "liveRequests"),
        loaded: f.loaded === null ? null : shardOf(f.loaded),
        ...(f.batch === undefined ? {} : { batch: batchOf(f.batch) }),
      };
    case "ERROR":
      return { kind: "error", id, code: str(f.code, "code") as ErrorCode, message: str(f.message, "message") };
    case "TOKEN":
      return { kind: "output", id, output: { kind: "token", token: int(f.token, "token") } };
    case "TENSOR":
      return { kind: "output", id, output: { kind: "hidden", tensor: decodeTensor(f, msg.body) } };
    default:
      throw new NodeError("E_PROTOCOL_PAYLOAD", `the node takes no ${msg.type} frames from its runner`);
  }
}

// --- internal ---

function bad(name: string, value: unknown, want: string): NodeError {
  return new NodeError(
    "E_PROTOCOL_PAYLOAD",
    `runner frame field ${name} must be ${want}, got ${JSON.stringify(value)}`,
  );
}

function int(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw bad(name, v, "an integer");
  return v;
}

function num(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) throw bad(name, v, "a number");
  return v;
}

function str(v: unknown, name: string): string {
  if (typeof v !== "string") throw bad(name, v, "a string");
  return v;
}

function intArray(v: unknown, name: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isSafeInteger(x))) throw bad(name, v, "an array of integers");
  return v as number[];
}

function record(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad(name, v, "an object");
  return v as Record<string, unknown>;
}

function shardOf(v: unknown): ShardSpec {
  const s = record(v, "shard");
  return {
    modelId: str(s.modelId, "shard.modelId"),
    modelDir: str(s.modelDir, "shard.modelDir"),
    layerStart: int(s.layerStart, "shard.layerStart"),
    layerEnd: int(s.layerEnd, "shard.layerEnd"),
    nLayers: int(s.nLayers, "shard.nLayers"),
  };
}

function batchOf(v: unknown): EngineBatchStats {
  const b = record(v, "batch");
  return {
    lastBatch: int(b.lastBatch, "batch.lastBatch"),
    peakBatch: int(b.peakBatch, "batch.peakBatch"),
    waiting: int(b.waiting, "batch.waiting"),
  };
}

function samplingOf(v: unknown): SamplingParams {
  const s = record(v, "sampling");
  const sampling: SamplingParams = {
    temperature: num(s.temperature, "sampling.temperature"),
    topP: num(s.topP, "sampling.topP"),
    topK: int(s.topK, "sampling.topK"),
  };
  if (s.seed !== undefined) sampling.seed = int(s.seed, "sampling.seed");
  if (s.startIndex !== undefined) sampling.startIndex = int(s.startIndex, "sampling.startIndex");
  return sampling;
}
