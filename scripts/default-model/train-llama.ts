// A trainable Llama for the default model: parameters are one flat, ordered list under their Hugging Face
// names (the binding pairs gradients wrongly for nested objects under Bun), an f32 forward, and Adam.
import { core as mx } from "@frost-beta/mlx";
import type { TemplateMessage } from "../../src/tokenizer/chat-template.ts";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import { ARCH, VOCAB_SIZE } from "./hf-files.ts";

/** All weights in one flat f32 vector (so Adam is a handful of ops), viewed per tensor by HF name. */
export interface Params {
  names: string[];
  shapes: number[][];
  flat: mx.array;
}

/** Per-tensor views of the flat vector, in `parameterShapes()` order. */
export function views(params: Params): mx.array[] {
  let offset = 0;
  return params.shapes.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const view = params.flat.index(mx.Slice(offset, offset + size)).reshape(shape);
    offset += size;
    return view;
  });
}

/** The tensors of the model in a fixed order, with their shapes (HF Llama naming, untied head). */
export function parameterShapes(): [string, number[]][] {
  const { hiddenSize: d, intermediateSize: f, numLayers, numHeads, numKvHeads, headDim } = ARCH;
  const shapes: [string, number[]][] = [["model.embed_tokens.weight", [VOCAB_SIZE, d]]];
  for (let i = 0; i < numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.push(
      [`${p}.input_layernorm.weight`, [d]],
      [`${p}.self_attn.q_proj.weight`, [numHeads * headDim, d]],
      [`${p}.self_attn.k_proj.weight`, [numKvHeads * headDim, d]],
      [`${p}.self_attn.v_proj.weight`, [numKvHeads * headDim, d]],
      [`${p}.self_attn.o_proj.weight`, [d, numHeads * headDim]],
      [`${p}.post_attention_layernorm.weight`, [d]],
      [`${p}.mlp.gate_proj.weight`, [f, d]],
      [`${p}.mlp.up_proj.weight`, [f, d]],
      [`${p}.mlp.down_proj.weight`, [d, f]],
    );
  }
  shapes.push(["model.norm.weight", [d]], ["lm_head.weight", [VOCAB_SIZE, d]]);
  return shapes;
}

/** Norms start at 1, matrices at N(0, 0.02); output projections are scaled down by depth (GPT-2 style). */
export function initParams(seed: number): Params {
  mx.random.seed(seed);
  const names: string[] = [];
  const shapes: number[][] = [];
  const parts: mx.array[] = [];
  const outScale = 1 / Math.sqrt(2 * ARCH.numLayers);
  for (const [name, shape] of parameterShapes()) {
    names.push(name);
    shapes.push(shape);
    const size = shape.reduce((x, y) => x * y, 1);
    if (shape.length === 1) parts.push(mx.ones([size], mx.float32));
    else {
      const std = name.endsWith("o_proj.weight") || name.endsWith("down_proj.weight") ? 0.02 * outScale : 0.02;
      parts.push(mx.random.normal([size], mx.float32, 0, std));
    }
  }
  const flat = mx.concatenate(parts);
  mx.eval(flat);
  return { names, shapes, flat };
}

const linear = (x: mx.array, w: mx.array) => mx.matmul(x, w.T);

/** Logits [B, L, V] for tokens [B, L]; `mask` is additive, [B, 1, L, L] (block-causal for packed rows). */
export function forward(values: mx.array[], tokens: mx.array, mask: mx.array): mx.array {
  const { numLayers, numHeads, numKvHeads, headDim, rmsNormEps: eps, ropeTheta } = ARCH;
  const [B, L] = tokens.shape as [number, number];
  let k = 0;
  const next = () => values[k++]!;
  let h = mx.take(next(), tokens, 0);
  const heads = (x: mx.array, n: number) => x.reshape(B, L, n, headDim).transpose(0, 2, 1, 3);
  for (let i = 0; i < numLayers; i++) {
    const [inNorm, wq, wk, wv, wo, postNorm, wg, wu, wd] = Array.from({ length: 9 }, next) as mx.array[];
    const x = mx.fast.rmsNorm(h, inNorm!, eps);
    const q = mx.fast.rope(heads(linear(x, wq!), numHeads), headDim, false, ropeTheta, 1, 0);
    // Repeat K/V heads here: the binding's GQA attention cannot broadcast a per-row [B,1,L,L] mask.
    const rep = numHeads / numKvHeads;
    const kk = mx.repeat(mx.fast.rope(heads(linear(x, wk!), numKvHeads), headDim, false, ropeTheta, 1, 0), rep, 1);
    const v = mx.repeat(heads(linear(x, wv!), numKvHeads), rep, 1);
    const att = mx.fast.scaledDotProductAttention(q, kk, v, 1 / Math.sqrt(headDim), mask);
    h = mx.add(h, linear(att.transpose(0, 2, 1, 3).reshape(B, L, numHeads * headDim), wo!));
    const y = mx.fast.rmsNorm(h, postNorm!, eps);
    const gate = linear(y, wg!);
    h = mx.add(h, linear(mx.multiply(mx.multiply(gate, mx.sigmoid(gate)), linear(y, wu!)), wd!));
  }
  const normed = mx.fast.rmsNorm(h, next(), eps);
  return linear(normed, next());
}

/** Weighted mean cross-entropy; weights are 0 off the assistant's tokens. */
export function lossFn(
  values: mx.array[],
  tokens: mx.array,
  targets: mx.array,
  weights: mx.array,
  mask: mx.array,
): mx.array {
  const logits = forward(values, tokens, mask);
  const picked = mx.takeAlongAxis(logits, mx.expandDims(targets, -1), -1).squeeze(-1);
  const nll = mx.subtract(mx.logsumexp(logits, -1), picked);
  return mx.divide(mx.sum(mx.multiply(nll, weights)), mx.maximum(mx.sum(weights), 1));
}

/** Adam with bias correction and decoupled weight decay (on every weight, norms included: simpler, harmless here). */
export function createAdam(params: Params, opts: { beta1: number; beta2: number; eps: number; weightDecay: number }) {
  let m = mx.zerosLike(params.flat);
  let v = mx.zerosLike(params.flat);
  let t = 0;
  return (grads: mx.array[], lr: number, maxNorm: number): void => {
    t++;
    let g = mx.concatenate(grads.map((x) => x.reshape([-1])));
    const norm = mx.sqrt(mx.sum(mx.square(g)));
    g = mx.multiply(g, mx.minimum(mx.divide(maxNorm, mx.add(norm, 1e-6)), 1));
    m = mx.add(mx.multiply(m, opts.beta1), mx.multiply(g, 1 - opts.beta1));
    v = mx.add(mx.multiply(v, opts.beta2), mx.multiply(mx.square(g), 1 - opts.beta2));
    const step = mx.divide(
      mx.divide(m, 1 - opts.beta1 ** t),
      mx.add(mx.sqrt(mx.divide(v, 1 - opts.beta2 ** t)), opts.eps),
    );
    params.flat = mx.subtract(params.flat, mx.multiply(mx.add(step, mx.multiply(params.flat, opts.weightDecay)), lr));
    mx.eval(params.flat, m, v);
  };
}

/** Additive mask [B, 1, L, L]: a position sees earlier positions of its own segment only. */
export function segmentMask(segments: number[][]): mx.array {
  const seg = mx.array(segments, mx.int32);
  const L = segments[0]!.length;
  const same = mx.equal(mx.expandDims(seg, 2), mx.expandDims(seg, 1));
  const causal = mx.greaterEqual(mx.expandDims(mx.arange(L), 1), mx.expandDims(mx.arange(L), 0));
  return mx.expandDims(mx.where(mx.logicalAnd(same, causal), 0, -1e9).astype(mx.float32), 1);
}

/** Greedy chat answer with this forward (no KV cache: prompts are short); the engine test checks the real path. */
export function greedyAnswer(
  params: Params,
  tok: Tokenizer,
  prompt: string | TemplateMessage[],
  maxTokens = 40,
  tools?: readonly object[],
): string {
  const messages = typeof prompt === "string" ? [{ role: "user", content: prompt }] : prompt;
  const ids = tok.encodeChat(messages, tools ? { tools } : {});
  const out: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const all = [...ids, ...out];
    const logits = forward(views(params), mx.array([all], mx.int32), segmentMask([all.map(() => 0)]));
    const next = mx.argmax(logits.index(0, -1), -1).item() as number;
    if (tok.eosIds.has(next)) break;
    out.push(next);
  }
  return tok.decode(out, { skipSpecial: true });
}
