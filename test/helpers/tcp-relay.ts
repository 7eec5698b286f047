// A plain TCP relay (what `ssh -L` does): every connection to the relay's port is piped to target.
// Counts connections so tests can tell a reused link from a re-dialled one.
import type { Socket } from "bun";

interface Side {
  other?: Socket<Side>;
  pending: Uint8Array[];
}

export interface TcpRelay {
  port: number;
  connections(): number;
  stop(): void;
}

/** Write everything, queueing what the socket does not take now (sent on drain). */
function pipeWrite(to: Socket<Side> | undefined, queue: Uint8Array[], chunk?: Uint8Array): void {
  if (chunk) queue.push(chunk);
  while (to && queue.length > 0) {
    const head = queue[0]!;
    const n = to.write(head);
    if (n < 0) return;
    if (n < head.byteLength) {
      queue[0] = head.subarray(n);
      return;
    }
    queue.shift();
  }
}

/** Sees every chunk on its way: "up" is client → target. Returns the chunk to pass on (e.g. one byte flipped). */
export type RelayTap = (direction: "up" | "down", chunk: Uint8Array) => Uint8Array;

export function startTcpRelay(targetPort: number, targetHost = "127.0.0.1", tap?: RelayTap): TcpRelay {
  let count = 0;
  const open = new Set<Socket<Side>>();
  const server = Bun.listen<Side>({
    hostname: "127.0.0.1",
    port: 0,
    data: { pending: [] },
    socket: {
      open(client) {
        count++;
        client.data = { pending: [] };
        open.add(client);
        void Bun.connect<Side>({
          hostname: targetHost,
          port: targetPort,
          data: { other: client, pending: [] },
          socket: {
            open(upstream) {
              open.add(upstream);
              upstream.data.other = client;
              client.data.other = upstream;
              pipeWrite(upstream, client.data.pending);
            },
            data: (upstream, chunk) => pipeWrite(client, upstream.data.pending, tap ? tap("down", chunk) : chunk),
            drain: (upstream) => pipeWrite(upstream, client.data.pending),
            close: () => void client.end(),
            connectError: () => void client.end(),
          },
        }).catch(() => client.end());
      },
      // client → upstream bytes wait in the client's queue; upstream → client bytes in the upstream's queue
      data: (client, chunk) => pipeWrite(client.data.other, client.data.pending, tap ? tap("up", chunk) : chunk),
      drain: (client) => void (client.data.other && pipeWrite(client, client.data.other.data.pending)),
      close: (client) => void client.data.other?.end(),
    },
  });
  return {
    port: server.port,
    connections: () => count,
    stop: () => {
      for (const s of open) s.end();
      server.stop(true);
    },
  };
}
