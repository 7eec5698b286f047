// The chip → peak TFLOPS table of exo (exo-legacy §6), as data, and its lookup.
// Informational only (shown in /topology and `exo topology`); placement uses memory.
import type { DeviceFlops } from "./types.ts";

/** [fp32, fp16, int8] TFLOPS by chip name as exo spelled it. Most chips follow fp16 = 2×fp32, int8 = 4×fp32. */
const CHIP_TFLOPS: Record<string, readonly [number, number, number]> = {
  // Apple M chips
  "Apple M1": [2.29, 4.58, 9.16],
  "Apple M1 Pro": [5.3, 10.6, 21.2],
  "Apple M1 Max": [10.6, 21.2, 42.4],
  "Apple M1 Ultra": [21.2, 42.4, 84.8],
  "Apple M2": [3.55, 7.1, 14.2],
  "Apple M2 Pro": [5.68, 11.36, 22.72],
  "Apple M2 Max": [13.49, 26.98, 53.96],
  "Apple M2 Ultra": [26.98, 53.96, 107.92],
  "Apple M3": [3.55, 7.1, 14.2],
  "Apple M3 Pro": [4.97, 9.94, 19.88],
  "Apple M3 Max": [14.2, 28.4, 56.8],
  "Apple M3 Ultra": [54.26, 108.52, 217.04],
  "Apple M4": [4.26, 8.52, 17.04],
  "Apple M4 Pro": [5.72, 11.44, 22.88],
  "Apple M4 Max": [18.03, 36.07, 72.14],
  // Apple A chips
  "Apple A13 Bionic": [0.69, 1.38, 2.76],
  "Apple A14 Bionic": [0.75, 1.5, 3.0],
  "Apple A15 Bionic": [1.37, 2.74, 5.48],
  "Apple A16 Bionic": [1.79, 3.58, 7.16],
  "Apple A17 Pro": [2.15, 4.3, 8.6],
  // NVIDIA RTX 40 series
  "NVIDIA GEFORCE RTX 4090": [82.58, 165.16, 330.32],
  "NVIDIA GEFORCE RTX 4080": [48.74, 97.48, 194.96],
  "NVIDIA GEFORCE RTX 4080 SUPER": [52.0, 104.0, 208.0],
  "NVIDIA GEFORCE RTX 4070 TI SUPER": [40.0, 80.0, 160.0],
  "NVIDIA GEFORCE RTX 4070 TI": [39.43, 78.86, 157.72],
  "NVIDIA GEFORCE RTX 4070 SUPER": [30.0, 60.0, 120.0],
  "NVIDIA GEFORCE RTX 4070": [29.0, 58.0, 116.0],
  "NVIDIA GEFORCE RTX 4060 TI 16GB": [22.0, 44.0, 88.0],
  "NVIDIA GEFORCE RTX 4060 TI": [22.0, 44.0, 88.0],
  // NVIDIA RTX 30 series
  "NVIDIA GEFORCE RTX 3050": [9.11, 18.22, 36.44],
  "NVIDIA GEFORCE RTX 3060": [13.0, 26.0, 52.0],
  "NVIDIA GEFORCE RTX 3060 TI": [16.2, 32.4, 64.8],
  "NVIDIA GEFORCE RTX 3070": [20.3, 40.6, 81.2],
  "NVIDIA GEFORCE RTX 3070 TI": [21.8, 43.6, 87.2],
  "NVIDIA GEFORCE RTX 3080 (10 GB)": [29.8, 59.6, 119.2],
  "NVIDIA GEFORCE RTX 3080 (12 GB)": [30.6, 61.2, 122.4],
  "NVIDIA GEFORCE RTX 3080 TI": [34.1, 68.2, 136.4],
  "NVIDIA GEFORCE RTX 3090": [35.6, 71.2, 142.4],
  "NVIDIA GEFORCE RTX 3090 TI": [40.0, 80.0, 160.0],
  // NVIDIA RTX 20 series
  "NVIDIA GEFORCE RTX 2060": [6.45, 12.9, 25.8],
  "NVIDIA GEFORCE RTX 2060 SUPER": [7.2, 14.4, 28.8],
  "NVIDIA GEFORCE RTX 2070": [7.46, 14.93, 29.86],
  "NVIDIA GEFORCE RTX 2070 SUPER": [9.06, 18.12, 36.24],
  "NVIDIA GEFORCE RTX 2080": [10.07, 20.14, 40.28],
  "NVIDIA GEFORCE RTX 2080 TI": [13.45, 26.9, 40.28],
  "NVIDIA GEFORCE RTX 2080 SUPER": [11.15, 22.3, 44.6],
  "NVIDIA TITAN RTX": [16.31, 32.62, 65.24],
  // NVIDIA GTX 10 and 16 series (Pascal's fp16 is a fraction of fp32)
  "NVIDIA GEFORCE GTX 1050 TI": [2.0, 4.0, 8.0],
  "NVIDIA GEFORCE GTX 1070": [6.463, 0.101, 25.852],
  "NVIDIA GEFORCE GTX 1080": [8.873, 0.138, 35.492],
  "NVIDIA GEFORCE GTX 1080 TI": [11.34, 0.177, 45.36],
  "NVIDIA GeForce GTX 1660 TI": [4.8, 9.6, 19.2],
  // NVIDIA RTX A (Ampere workstation) and Ada
  "NVIDIA RTX A2000": [7.99, 7.99, 31.91],
  "NVIDIA RTX A4000": [19.17, 19.17, 76.68],
  "NVIDIA RTX A4500": [23.65, 23.65, 94.6],
  "NVIDIA RTX A5000": [27.8, 27.8, 111.2],
  "NVIDIA RTX A6000": [38.71, 38.71, 154.84],
  "NVIDIA RTX 4000 ADA GENERATION": [26.7, 26.7, 258.0],
  // Common server GPUs (tensor-core fp16)
  "NVIDIA A40 48GB PCIE": [37.4, 149.7, 299.3],
  "NVIDIA A100 40GB PCIE": [19.5, 312.0, 624.0],
  "NVIDIA A800 40GB PCIE": [19.5, 312.0, 624.0],
  "NVIDIA A100 80GB PCIE": [19.5, 312.0, 624.0],
  "NVIDIA A800 80GB PCIE": [19.5, 312.0, 624.0],
  "NVIDIA A100 80GB SXM": [19.5, 312.0, 624.0],
  "NVIDIA A800 80GB SXM": [19.5, 312.0, 624.0],
  // AMD RX 6000 series
  "AMD Radeon RX 6900 XT": [23.04, 46.08, 92.16],
  "AMD Radeon RX 6800 XT": [20.74, 41.48, 82.96],
  "AMD Radeon RX 6800": [16.17, 32.34, 64.68],
  "AMD Radeon RX 6700 XT": [13.21, 26.42, 52.84],
  "AMD Radeon RX 6700": [11.4, 22.8, 45.6],
  "AMD Radeon RX 6600 XT": [10.6, 21.2, 42.4],
  "AMD Radeon RX 6600": [8.93, 17.86, 35.72],
  "AMD Radeon RX 6500 XT": [5.77, 11.54, 23.08],
  "AMD Radeon RX 6400": [3.57, 7.14, 14.28],
  // AMD RX 7000 series
  "AMD Radeon RX 7900 XTX": [61.4, 122.8, 245.6],
  "AMD Radeon RX 7900 XT": [53.4, 106.8, 213.6],
  "AMD Radeon RX 7800 XT": [42.6, 85.2, 170.4],
  "AMD Radeon RX 7700 XT": [34.2, 68.4, 136.8],
  "AMD Radeon RX 7600": [21.5, 43.0, 86.0],
  "AMD Radeon RX 7500": [16.2, 32.4, 64.8],
};

/** Upper-cased index, so "NVIDIA GeForce RTX 4090" finds exo's "NVIDIA GEFORCE RTX 4090". */
const BY_UPPER = new Map(Object.entries(CHIP_TFLOPS).map(([chip, t]) => [chip.toUpperCase(), t]));

/** exo also matched laptop variants ("… Laptop GPU", "Laptop GPU …"); stripping the marker covers them all. */
function withoutLaptopMarker(chip: string): string {
  return chip.replace(/^LAPTOP GPU\s+/, "").replace(/\s+LAPTOP GPU$/, "");
}

/** Number of chips in the table (exo's 80 base entries). */
export const CHIP_COUNT = Object.keys(CHIP_TFLOPS).length;

/** Peak TFLOPS of a chip by name (case-insensitive, laptop variants included); zeros when unknown, as in exo. */
export function flopsForChip(chip: string): DeviceFlops {
  const key = chip.trim().toUpperCase();
  const t = BY_UPPER.get(key) ?? BY_UPPER.get(withoutLaptopMarker(key));
  return t ? { fp32: t[0], fp16: t[1], int8: t[2] } : { fp32: 0, fp16: 0, int8: 0 };
}
