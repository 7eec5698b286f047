// Pure parts of runner process handling: the start command from sources and the crash reason from stderr.
import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { crashReason, runnerCommand } from "../../../src/engine/runner-process.ts";

describe("runner process", () => {
  test("from sources, the runner starts as this Bun running src/main.ts with the runner verb", () => {
    const [exe, main, verb] = runnerCommand();
    expect(exe).toBe(process.execPath);
    expect(main!.endsWith("/src/main.ts") && existsSync(main!)).toBe(true);
    expect(verb).toBe("runner");
  });

  test("the crash reason is the C++ exception's what() line when there is one", () => {
    const tail =
      "before eval\nterminate called after throwing an instance of 'std::runtime_error'\n  what():  [Matmul::eval_cpu] Currently only supports float32.\n=====\npanic: abort() called\n";
    expect(crashReason(tail)).toBe("[Matmul::eval_cpu] Currently only supports float32.");
  });

  test("without what(), the last error or panic line is the reason, and plain logs give none", () => {
    expect(crashReason("[engine] loading\nerror: Cannot find module 'x'\n   at y\n")).toBe(
      "error: Cannot find module 'x'",
    );
    expect(crashReason("panic: Segmentation fault at address 0x0\n")).toBe("panic: Segmentation fault at address 0x0");
    expect(crashReason("[engine] runner ready\n[engine] loaded 4 layers\n")).toBeUndefined();
  });

  test("a NodeError the runner exits with, as main.ts prints it, is the reason", () => {
    const tail =
      "[engine] starting\nexo: this exo executable carries no MLX addon for darwin-arm64 [E_MLX_UNAVAILABLE]\n";
    expect(crashReason(tail)).toBe(
      "exo: this exo executable carries no MLX addon for darwin-arm64 [E_MLX_UNAVAILABLE]",
    );
  });
});
