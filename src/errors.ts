// The one error type of the project: a message for people plus a stable code for programs.

/** Stable error codes, prefixed by area. Add new ones here so they stay greppable. */
export type ErrorCode =
  | "E_PROTOCOL_MAGIC"
  | "E_PROTOCOL_VERSION"
  | "E_PROTOCOL_TYPE"
  | "E_PROTOCOL_PAYLOAD"
  | "E_FRAME_TOO_LARGE"
  | "E_HANDSHAKE"
  | "E_PROTOCOL_SEAL"
  | "E_PEER_TIMEOUT"
  | "E_PEER_DOWN"
  | "E_PEER_UNKNOWN"
  | "E_CONFIG_INVALID"
  | "E_CONFIG_READ"
  | "E_MODEL_UNKNOWN"
  | "E_MODEL_UNSUPPORTED"
  | "E_MODEL_TOO_BIG"
  | "E_WEIGHTS"
  | "E_DTYPE"
  | "E_CAPACITY"
  | "E_REQUEST_UNKNOWN"
  | "E_RUNNER_CRASHED"
  | "E_RUNNER"
  | "E_DOWNLOAD"
  | "E_DOWNLOAD_AUTH"
  | "E_DOWNLOAD_NOT_FOUND"
  | "E_DOWNLOAD_DISK_FULL"
  | "E_DOWNLOAD_VERIFY"
  | "E_DOWNLOAD_OFFLINE"
  | "E_TOKENIZER"
  | "E_CONTEXT_LENGTH"
  | "E_CANCELLED"
  | "E_TIMEOUT"
  | "E_INTERNAL"
  | "E_INVALID_REQUEST"
  | "E_UNAUTHORIZED"
  | "E_BODY_TOO_LARGE"
  | "E_NOT_FOUND"
  | "E_MLX_UNAVAILABLE";

/** An error with a stable `code`; add context by wrapping with `{ cause }`. */
export class NodeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NodeError";
    this.code = code;
  }
}

/** True for a NodeError (also across module copies, where instanceof can fail). */
export function isNodeError(err: unknown): err is NodeError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === "string" && err.name === "NodeError";
}

/** The code of any thrown value, defaulting to E_INTERNAL. */
export function errorCode(err: unknown): ErrorCode {
  return isNodeError(err) ? err.code : "E_INTERNAL";
}
