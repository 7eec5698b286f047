// Device capabilities: parsers fed sample /proc, sysctl and system_profiler text; the chip → TFLOPS table.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { CHIP_COUNT, flopsForChip } from "../../../src/topology/chip-flops.ts";
import {
  detectCapabilities,
  linuxCapabilities,
  macCapabilities,
  parseCpuinfo,
  parseMeminfo,
  parseSysctl,
  parseSystemProfiler,
} from "../../../src/topology/capabilities.ts";

const sample = (name: string) => Bun.file(join(import.meta.dir, "../../fixtures/capabilities", name)).text();

describe("Linux parsers", () => {
  test("reads MemTotal in MB (kB / 1024, rounded down)", async () => {
    expect(parseMeminfo(await sample("meminfo.txt"))).toBe(Math.floor(24683656 / 1024));
    expect(parseMeminfo("MemFree: 12 kB\n")).toBeUndefined();
  });

  test("takes the CPU name from model name on x86 and from Hardware on ARM", async () => {
    expect(parseCpuinfo(await sample("cpuinfo-x86.txt"))).toBe("AMD EPYC 7763 64-Core Processor");
    expect(parseCpuinfo(await sample("cpuinfo-arm.txt"))).toBe("BCM2835");
    expect(parseCpuinfo("processor : 0\n")).toBeUndefined();
  });

  test("builds a Linux box's capabilities with zero TFLOPS for an unlisted CPU", async () => {
    const caps = linuxCapabilities(await sample("meminfo.txt"), await sample("cpuinfo-x86.txt"));
    expect(caps).toEqual({
      model: "Linux Box",
      chip: "AMD EPYC 7763 64-Core Processor",
      memory: 24105,
      flops: { fp32: 0, fp16: 0, int8: 0 },
    });
  });

  test("falls back to unknown chip and zero memory on empty input", () => {
    expect(linuxCapabilities("", "")).toMatchObject({ chip: "Unknown Chip", memory: 0 });
  });
});

describe("macOS parsers", () => {
  test("splits sysctl output into keys and values", async () => {
    const map = parseSysctl(await sample("sysctl-m2max.txt"));
    expect(map.get("hw.memsize")).toBe("34359738368");
    expect(map.get("machdep.cpu.brand_string")).toBe("Apple M2 Max");
  });

  test("reads model name, chip and memory from system_profiler as exo did", async () => {
    expect(parseSystemProfiler(await sample("system-profiler-ultra.txt"))).toEqual({
      model: "Mac Studio",
      chip: "Apple M2 Ultra",
      memory: 192 * 1024,
    });
  });

  test("combines sysctl memory and chip with the profiler's model name and looks up TFLOPS", async () => {
    const caps = macCapabilities(await sample("sysctl-m2max.txt"), await sample("system-profiler-m2max.txt"));
    expect(caps).toEqual({
      model: "MacBook Pro",
      chip: "Apple M2 Max",
      memory: 32768,
      flops: { fp32: 13.49, fp16: 26.98, int8: 53.96 },
    });
  });

  test("works from sysctl alone (model identifier instead of the marketing name)", async () => {
    const caps = macCapabilities(await sample("sysctl-m2max.txt"));
    expect(caps.model).toBe("Mac14,6");
    expect(caps.memory).toBe(32768);
  });

  test("works from system_profiler alone", async () => {
    const caps = macCapabilities("", await sample("system-profiler-ultra.txt"));
    expect(caps).toMatchObject({ model: "Mac Studio", chip: "Apple M2 Ultra", memory: 196608 });
    expect(caps.flops.fp32).toBe(26.98);
  });
});

describe("chip table", () => {
  test("holds exo's 80 chips", () => {
    expect(CHIP_COUNT).toBe(80);
  });

  test("finds chips case-insensitively and through exo's laptop spellings", () => {
    expect(flopsForChip("NVIDIA GeForce RTX 4090").fp32).toBe(82.58);
    expect(flopsForChip("NVIDIA GEFORCE RTX 3070 Laptop GPU").fp16).toBe(40.6);
    expect(flopsForChip("Laptop GPU NVIDIA GEFORCE RTX 3070").int8).toBe(81.2);
  });

  test("keeps exo's exceptions to the 2x / 4x rule", () => {
    expect(flopsForChip("NVIDIA GEFORCE GTX 1080")).toEqual({ fp32: 8.873, fp16: 0.138, int8: 35.492 });
    expect(flopsForChip("NVIDIA A100 80GB SXM")).toEqual({ fp32: 19.5, fp16: 312, int8: 624 });
  });

  test("gives zeros for an unknown chip", () => {
    expect(flopsForChip("Intel Pentium 4")).toEqual({ fp32: 0, fp16: 0, int8: 0 });
  });
});

describe("detectCapabilities", () => {
  test("reports this Linux machine's memory and CPU", async () => {
    const caps = await detectCapabilities("linux");
    expect(caps.model).toBe("Linux Box");
    expect(caps.memory).toBe(parseMeminfo(await Bun.file("/proc/meminfo").text()) ?? -1);
    expect(caps.memory).toBeGreaterThan(0);
  });

  test("reports unknown capabilities on an unsupported platform", async () => {
    expect(await detectCapabilities("aix")).toMatchObject({ model: "Unknown Model", chip: "Unknown Chip", memory: 0 });
  });
});
