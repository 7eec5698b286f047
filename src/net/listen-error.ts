// One readable line for a port this node cannot bind (peer links or the API): the cause in words and the flag to
// change, instead of Bun's message and a stack trace. Pure: the thrown error in, a NodeError out.
import { NodeError } from "../errors.ts";

/** "cannot listen on 127.0.0.1:52415: port in use; pick another --api-port" (E_CONFIG_INVALID). */
export function listenError(host: string, port: number, flag: "--port" | "--api-port", err: unknown): NodeError {
  const code = (err as { code?: unknown } | null)?.code;
  const reason =
    code === "EADDRINUSE"
      ? `port in use; pick another ${flag} (0 picks a free one)`
      : code === "EADDRNOTAVAIL"
        ? `no network interface of this machine has the address ${host}; check ${flag === "--port" ? "--host" : "--api-host"}`
        : code === "EACCES"
          ? `permission denied for port ${port}; pick another ${flag} above 1023`
          : `${(err as Error)?.message ?? String(err)}`;
  return new NodeError("E_CONFIG_INVALID", `cannot listen on ${host}:${port}: ${reason}`, { cause: err });
}
