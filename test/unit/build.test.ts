// build.ts decides whether the installed MLX addon matches the target by reading its file header.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { nativeFormat } from "../../build.ts";

function elf(machine: number): Uint8Array {
  const head = new Uint8Array(20);
  head.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  new DataView(head.buffer).setUint16(18, machine, true);
  return head;
}

function macho(cpu: number): Uint8Array {
  const head = new Uint8Array(20);
  const view = new DataView(head.buffer);
  view.setUint32(0, 0xfeedfacf, true);
  view.setUint32(4, cpu, true);
  return head;
}

test.each([
  ["ELF x86-64", elf(0x3e), "linux-x64"],
  ["ELF aarch64", elf(0xb7), "linux-arm64"],
  ["Mach-O arm64", macho(0x0100000c), "darwin-arm64"],
  ["Mach-O x86_64", macho(0x01000007), "darwin-x64"],
  ["ELF for another machine", elf(0x28), undefined],
  [
    "a 32-bit Mach-O",
    (() => {
      const h = macho(12);
      new DataView(h.buffer).setUint32(0, 0xfeedface, true);
      return h;
    })(),
    undefined,
  ],
  ["a text file", new TextEncoder().encode("#!/bin/sh\necho hello world\n"), undefined],
  ["a truncated header", elf(0x3e).subarray(0, 10), undefined],
] as const)("the executable format of %s is %p", (_name, head, expected) => {
  expect(nativeFormat(head)).toBe(expected);
});

test("the MLX addon shipped in the npm tarball is recognised as a Linux x86-64 library", () => {
  const addon = readFileSync(resolve(import.meta.dir, "../../node_modules/@frost-beta/mlx/build/Release/mlx.node"));
  expect(nativeFormat(addon.subarray(0, 20))).toBe("linux-x64");
});
