// HTTP errors of the API: NodeError code → status + OpenAI's envelope {"error":{message,type,param,code}}.
// Anything unexpected becomes a 500 whose body never carries a stack trace.
import { NodeError, errorCode, isNodeError, type ErrorCode } from "../errors.ts";
import { logger } from "../log.ts";

const log = logger("api");

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A request the API refuses; `param` names the offending field (OpenAI's `param`). */
export class ApiError extends NodeError {
  readonly param: string | null;
  constructor(code: ErrorCode, message: string, param: string | null = null) {
    super(code, message);
    this.param = param;
  }
}

/** A 400 naming the offending request field. */
export function invalidParam(param: string, message: string): ApiError {
  return new ApiError("E_INVALID_REQUEST", message, param);
}

interface Mapping {
  status: number;
  type: string;
  /** OpenAI's machine-readable code. */
  code: string;
}

const MAPPINGS: Partial<Record<ErrorCode, Mapping>> = {
  E_INVALID_REQUEST: { status: 400, type: "invalid_request_error", code: "invalid_value" },
  E_UNAUTHORIZED: { status: 401, type: "invalid_request_error", code: "invalid_api_key" },
  E_NOT_FOUND: { status: 404, type: "invalid_request_error", code: "not_found" },
  E_MODEL_UNKNOWN: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  E_BODY_TOO_LARGE: { status: 413, type: "invalid_request_error", code: "request_too_large" },
  E_CAPACITY: { status: 429, type: "rate_limit_error", code: "capacity_exceeded" },
  E_PEER_DOWN: { status: 503, type: "server_error", code: "peer_down" },
  E_RUNNER_CRASHED: { status: 503, type: "server_error", code: "runner_crashed" },
  E_MODEL_TOO_BIG: { status: 503, type: "server_error", code: "model_too_big" },
  E_CONTEXT_LENGTH: { status: 400, type: "invalid_request_error", code: "context_length_exceeded" },
  E_MODEL_UNSUPPORTED: { status: 400, type: "invalid_request_error", code: "model_not_supported" },
  // nginx's "client closed request": nobody reads it, but the log shows why the request ended.
  E_CANCELLED: { status: 499, type: "invalid_request_error", code: "cancelled" },
  // Downloads happen on the client's behalf: a missing repo is the client's 404, the rest are upstream or disk trouble.
  E_DOWNLOAD_NOT_FOUND: { status: 404, type: "invalid_request_error", code: "model_not_found" },
  E_DOWNLOAD_OFFLINE: { status: 503, type: "server_error", code: "download_offline" },
  E_DOWNLOAD_AUTH: { status: 503, type: "server_error", code: "download_unauthorized" },
  E_DOWNLOAD: { status: 502, type: "server_error", code: "download_failed" },
  E_DOWNLOAD_VERIFY: { status: 502, type: "server_error", code: "download_failed" },
  E_DOWNLOAD_DISK_FULL: { status: 507, type: "server_error", code: "disk_full" },
  E_TIMEOUT: { status: 504, type: "server_error", code: "timeout" },
  E_PEER_TIMEOUT: { status: 504, type: "server_error", code: "timeout" },
};

const INTERNAL: Mapping = { status: 500, type: "server_error", code: "internal_error" };

/** Status and envelope for any thrown value; unknown errors are logged here and hidden from the client. */
export function describeError(err: unknown): { status: number; body: ErrorEnvelope } {
  const mapping = isNodeError(err) ? (MAPPINGS[err.code] ?? INTERNAL) : INTERNAL;
  const known = isNodeError(err) && mapping !== INTERNAL;
  if (!known) log.error("request failed:", err);
  const message = isNodeError(err) ? err.message : "internal error (see the node's log)";
  const param = err instanceof ApiError ? err.param : null;
  // Codes without a mapping still tell programs what failed ("E_DOWNLOAD" → "download").
  const code = known ? mapping.code : isNodeError(err) ? errorCode(err).slice(2).toLowerCase() : mapping.code;
  return { status: mapping.status, body: { error: { message, type: mapping.type, param, code } } };
}

/** Seconds a refused client should wait before it retries: the admission queue drains at decode speed. */
export const RETRY_AFTER_SECONDS = 1;

/** `headers` plus `Retry-After` on a 429 (the admission queue is full), for every dialect's error response. */
export function errorHeaders(status: number, headers?: Record<string, string>): Record<string, string> | undefined {
  return status === 429 ? { ...headers, "retry-after": String(RETRY_AFTER_SECONDS) } : headers;
}

/** The JSON error response for any thrown value. */
export function errorResponse(err: unknown, headers?: Record<string, string>): Response {
  const { status, body } = describeError(err);
  return Response.json(body, { status, headers: errorHeaders(status, headers) });
}
