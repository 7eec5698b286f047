// Quantization as implied by a Hugging Face repo name (mlx-community convention), and its bits per weight.
// exo's catalog had no field for it; the name is the only source before config.json is downloaded.

import type { Quantization } from "../models/spec/quantization.ts";

/** Reads the quantization from a repo name: an explicit `-Nbit`/`_Nbit`/`AQN` marker, else `fp16`/`bf16`, else unquantized bf16. */
export function parseQuantization(repo: string): Quantization {
  const name = repo.slice(repo.lastIndexOf("/") + 1).toLowerCase();
  const bits = /(?:^|[-_])(\d{1,2})-?bit(?:$|[-_])/.exec(name) ?? /(?:^|[-_])aq(\d)(?:$|[-_])/.exec(name);
  if (bits?.[1]) return `${Number(bits[1])}bit`;
  if (/(?:^|[-_])f(?:p)?16(?:$|[-_])/.test(name)) return "fp16";
  if (/(?:^|[-_])f(?:p)?32(?:$|[-_])/.test(name)) return "fp32";
  // An unmarked repo is a plain conversion: mlx-community publishes those in bf16.
  return "bf16";
}
