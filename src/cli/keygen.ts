// `exo keygen`: print a fresh cluster key (256 random bits, base64url) for the peer file's `cluster_key`.
import { defineCommand } from "citty";

export default defineCommand({
  meta: {
    name: "keygen",
    description: "Print a fresh random cluster key: put it in the peer file as `cluster_key: KEY` on every node.",
  },
  async run() {
    const { generateClusterKey } = await import("../config/cluster-key.ts");
    process.stdout.write(`${generateClusterKey()}\n`);
  },
});
