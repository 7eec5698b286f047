// Reading `ldconfig -p` for MLX's Linux libraries.
import { expect, test } from "bun:test";
import { missingFromLdconfig } from "../../../src/node/system-libs.ts";

test("libraries listed by ldconfig are found, absent ones reported", () => {
  const out = `2 libs found in cache \`/etc/ld.so.cache'\n\tliblapack.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/liblapack.so.3\n\tlibm.so.6 (libc6,x86-64) => /lib/libm.so.6\n`;
  expect(missingFromLdconfig(out)).toEqual(["libopenblas.so.0"]);
  expect(missingFromLdconfig("")).toEqual(["liblapack.so.3", "libopenblas.so.0"]);
});
