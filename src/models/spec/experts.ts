// Expert tensor naming. Hugging Face checkpoints store one tensor per expert
// (`….mlp.experts.{e}.{gate,up,down}_proj.weight`); mlx-community checkpoints store them stacked
// (`….mlp.switch_mlp.{gate,up,down}_proj.weight`, [E, out, in]). The loader stacks the first into the
// second, so models only ever see stacks. Pure.

const PER_EXPERT = /^(.*)\.experts\.(\d+)\.([A-Za-z0-9_]+)\.(weight|scales|biases|bias)$/;

/** The stack a per-expert tensor goes into, and its slot; undefined for any other tensor. */
export function expertSlot(name: string): { stacked: string; expert: number } | undefined {
  const m = PER_EXPERT.exec(name);
  if (!m) return undefined;
  return { stacked: `${m[1]}.switch_mlp.${m[3]}.${m[4]}`, expert: Number(m[2]) };
}

/** True for a routed expert's tensor, stacked or not (the CPU loader keeps these packed when quantized). */
export function isExpertTensor(name: string): boolean {
  return PER_EXPERT.test(name) || /\.switch_mlp\./.test(name);
}

/** The name of one projection's stack: `${mlpPrefix}.switch_mlp.${projection}`. */
export function expertStackPrefix(mlpPrefix: string, projection: string): string {
  return `${mlpPrefix}.switch_mlp.${projection}`;
}
