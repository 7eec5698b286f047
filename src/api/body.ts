// Reading request bodies with a size limit: too large → 413 before the whole body is buffered; bad JSON → 400.
import { ApiError } from "./errors.ts";

/** Default cap on a request body; chat histories are text, so this is generous. */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

/** Parse the JSON body of `req`. @throws E_BODY_TOO_LARGE (413), E_INVALID_REQUEST (400) for malformed JSON. */
export async function readJsonBody(req: Request, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const text = await readText(req, maxBytes);
  if (text.trim().length === 0)
    throw new ApiError("E_INVALID_REQUEST", "the request body is empty; send a JSON object");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError("E_INVALID_REQUEST", `the request body is not valid JSON (${(err as Error).message})`);
  }
}

// --- internal ---

async function readText(req: Request, maxBytes: number): Promise<string> {
  if (!req.body) return "";
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    // A chunked body has no content-length: stop reading as soon as it passes the cap.
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    parts.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(parts));
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError("E_BODY_TOO_LARGE", `the request body is larger than ${maxBytes} bytes`);
}
