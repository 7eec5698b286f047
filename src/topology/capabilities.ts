// This node's device capabilities (model, chip, memory in MB, TFLOPS): pure parsers fed the text of
// /proc (Linux) or sysctl / system_profiler (macOS), and detectCapabilities(), the one I/O edge.
import { logger } from "../log.ts";
import { flopsForChip } from "./chip-flops.ts";
import { UNKNOWN_CAPABILITIES, type DeviceCapabilities } from "./types.ts";

const log = logger("topology");
const MB = 1024 * 1024;

/** MemTotal of /proc/meminfo in MB (exo's unit: bytes / 2^20); undefined when absent. */
export function parseMeminfo(text: string): number | undefined {
  const m = /^MemTotal:\s+(\d+)\s*kB/m.exec(text);
  return m?.[1] ? Math.floor(Number(m[1]) / 1024) : undefined;
}

/** The CPU name from /proc/cpuinfo: x86 "model name", else ARM's "Hardware" or "Model". */
export function parseCpuinfo(text: string): string | undefined {
  for (const key of ["model name", "Hardware", "Model"]) {
    const m = new RegExp(`^${key}\\s*:\\s*(.+)$`, "m").exec(text);
    const value = m?.[1]?.trim();
    if (value) return value;
  }
  return undefined;
}

/** Capabilities of a Linux box from /proc text; the CPU is the chip (GPU backends are not used here). */
export function linuxCapabilities(meminfo: string, cpuinfo: string): DeviceCapabilities {
  const chip = parseCpuinfo(cpuinfo) ?? UNKNOWN_CAPABILITIES.chip;
  return { model: "Linux Box", chip, memory: parseMeminfo(meminfo) ?? 0, flops: flopsForChip(chip) };
}

/** `sysctl key1 key2 …` output ("key: value" lines) → map. */
export function parseSysctl(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/** `system_profiler SPHardwareDataType` → model name, chip and memory (MB), as exo read them. */
export function parseSystemProfiler(text: string): { model?: string; chip?: string; memory?: number } {
  const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(.+)$`, "m").exec(text)?.[1]?.trim();
  const memoryText = field("Memory");
  const m = memoryText ? /^([\d.]+)\s*(TB|GB|MB)/i.exec(memoryText) : null;
  const scale: Record<string, number> = { TB: 1024 * 1024, GB: 1024, MB: 1 };
  const memory = m?.[1] && m[2] ? Math.round(Number(m[1]) * (scale[m[2].toUpperCase()] ?? 1)) : undefined;
  return { model: field("Model Name"), chip: field("Chip") ?? field("Processor Name"), memory };
}

/** Capabilities of a Mac: sysctl is fast and always there; system_profiler adds the marketing model name. */
export function macCapabilities(sysctlText: string, profilerText = ""): DeviceCapabilities {
  const sysctl = parseSysctl(sysctlText);
  const profiler = parseSystemProfiler(profilerText);
  const memBytes = Number(sysctl.get("hw.memsize"));
  const memory = Number.isFinite(memBytes) && memBytes > 0 ? Math.floor(memBytes / MB) : (profiler.memory ?? 0);
  const chip = sysctl.get("machdep.cpu.brand_string") || profiler.chip || UNKNOWN_CAPABILITIES.chip;
  const model = profiler.model || sysctl.get("hw.model") || UNKNOWN_CAPABILITIES.model;
  return { model, chip, memory, flops: flopsForChip(chip) };
}

/** Runs a command; its stdout, or "" when it fails or takes longer than `timeoutMs`. */
async function run(cmd: string[], timeoutMs: number): Promise<string> {
  try {
    const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "ignore", timeout: timeoutMs });
    const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    return code === 0 ? text : "";
  } catch (err) {
    log.debug(`${cmd[0]} failed: ${String(err)}`);
    return "";
  }
}

async function readText(path: string): Promise<string> {
  try {
    return await Bun.file(path).text();
  } catch {
    return "";
  }
}

/** Detect this machine's capabilities (macOS, Linux; others report unknown). Never throws. */
export async function detectCapabilities(platform: NodeJS.Platform = process.platform): Promise<DeviceCapabilities> {
  let caps: DeviceCapabilities;
  if (platform === "darwin") {
    const [sysctl, profiler] = await Promise.all([
      run(["sysctl", "hw.memsize", "hw.model", "machdep.cpu.brand_string"], 3000),
      run(["system_profiler", "SPHardwareDataType"], 5000),
    ]);
    caps = macCapabilities(sysctl, profiler);
  } else if (platform === "linux") {
    caps = linuxCapabilities(await readText("/proc/meminfo"), await readText("/proc/cpuinfo"));
  } else {
    caps = { ...UNKNOWN_CAPABILITIES, flops: { ...UNKNOWN_CAPABILITIES.flops } };
  }
  if (caps.memory === 0) log.warn("could not detect this machine's memory; placement will give it no layers");
  return caps;
}
