// The API key check, shared by every protected route (the API and the node's debug routes): a constant-time
// compare of digests, so neither the key's bytes nor its length show in the response time.
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** True when no key is set, or the request carries `Authorization: Bearer <key>` (or, as Anthropic's clients send it, `x-api-key: <key>`). */
export function hasApiKey(req: Request, apiKey: string | undefined): boolean {
  if (!apiKey) return true;
  const header = req.headers.get("authorization") ?? "";
  const bearer = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
  const given = bearer || (req.headers.get("x-api-key") ?? "").trim();
  return timingSafeEqual(digest(given), digest(apiKey));
}
