// Bun.listen / Bun.connect wiring: the socket events feed the Connection stored on each socket.
// The only file that opens TCP sockets.
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { NodeError } from "../errors.ts";
import type { SocketData } from "./connection.ts";
import { listenError } from "./listen-error.ts";

type Opened = (socket: Socket<SocketData>) => void;

function handlers(onOpen: Opened): SocketHandler<SocketData> {
  return {
    open: onOpen,
    data: (s, chunk) => s.data.conn?.handleData(chunk),
    drain: (s) => s.data.conn?.handleDrain(),
    close: (s, err) => s.data.conn?.handleClosed(err ? `socket error: ${err.message}` : "closed by the other side"),
    // Also called when one of our handlers throws: end that connection, keep the node serving.
    error: (s, err) => s.data.conn?.close(`socket error: ${err.message}`),
    connectError: () => {},
  };
}

export interface TcpServer {
  readonly host: string;
  readonly port: number;
  stop(): void;
}

/**
 * Listen for peers on host:port (0 picks a free port); `onOpen` wraps each accepted socket.
 * @throws NodeError E_CONFIG_INVALID when the address cannot be bound
 */
export function listenTcp(host: string, port: number, onOpen: Opened): TcpServer {
  let server: TCPSocketListener<SocketData>;
  try {
    server = Bun.listen<SocketData>({ hostname: host, port, data: {}, socket: handlers(onOpen) });
  } catch (err) {
    throw listenError(host, port, "--port", err);
  }
  return { host, port: server.port, stop: () => server.stop(true) };
}

/**
 * Connect to host:port within timeoutMs; `onOpen` wraps the socket as soon as it is open.
 * @throws NodeError E_PEER_DOWN when the connection is refused, fails or times out
 */
export async function dialTcp(host: string, port: number, timeoutMs: number, onOpen: Opened): Promise<void> {
  let timedOut = false;
  const socket = Bun.connect<SocketData>({
    hostname: host,
    port,
    data: {},
    socket: handlers((s) => {
      if (timedOut) s.end();
      else onOpen(s);
    }),
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new NodeError("E_PEER_DOWN", `connecting to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    await Promise.race([socket, timeout]);
  } catch (err) {
    if (err instanceof NodeError) throw err;
    throw new NodeError("E_PEER_DOWN", `cannot connect to ${host}:${port}: ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
    socket.catch(() => {});
  }
}
