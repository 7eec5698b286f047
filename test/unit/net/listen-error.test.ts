// A port the node cannot bind is one line naming the cause and the flag to change.
import { describe, expect, test } from "bun:test";
import { listenError } from "../../../src/net/listen-error.ts";

const failure = (code: string) => Object.assign(new Error("Failed to listen at 127.0.0.1"), { code });

describe("listenError", () => {
  test("names the flag for a port in use, a foreign address and a privileged port", () => {
    expect(listenError("127.0.0.1", 52415, "--api-port", failure("EADDRINUSE")).message).toBe(
      "cannot listen on 127.0.0.1:52415: port in use; pick another --api-port (0 picks a free one)",
    );
    expect(listenError("10.9.9.9", 50051, "--port", failure("EADDRNOTAVAIL")).message).toContain(
      "no network interface of this machine has the address 10.9.9.9; check --host",
    );
    expect(listenError("0.0.0.0", 80, "--api-port", failure("EACCES")).message).toContain(
      "permission denied for port 80; pick another --api-port above 1023",
    );
    expect(listenError("h", 1, "--port", failure("EWHAT")).code).toBe("E_CONFIG_INVALID");
  });
});
