// A plain-JS float64 forward pass of DeepSeek V2/V3 (and Kimi K2), written from the Hugging Face modelling
// code (modeling_deepseek_v2/v3 and DeepSeek's own modeling_deepseek.py): MLA with keys and values expanded
// per head (the naive form), RoPE in HF's layout (evens then odds, rotate-half) with YaRN, the V2 and V3
// routers written out with sorts, every picked expert run one by one. No MLX, no cache: last-position logits.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadTensors } from "./reference-forward.ts";

type Cfg = Record<string, any>;
type Tensor = { shape: number[]; data: Float64Array };

/** rows × W[out, in]ᵀ for rows given as Float64Arrays. */
function matvec(x: Float64Array, w: Tensor, offset = 0, outRows = w.shape[w.shape.length - 2]!): Float64Array {
  const inF = w.shape[w.shape.length - 1]!;
  const y = new Float64Array(outRows);
  for (let o = 0; o < outRows; o++) {
    let s = 0;
    const base = offset + o * inF;
    for (let k = 0; k < inF; k++) s += x[k]! * w.data[base + k]!;
    y[o] = s;
  }
  return y;
}

function rms(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * w[i]!);
}

const silu = (v: number) => v / (1 + Math.exp(-v));
const mscaleOf = (scale: number, m: number) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

/** Inverse frequencies and cos/sin magnitude of DeepSeek's rotary embedding (YaRN when configured). */
function rotary(c: Cfg): { invFreq: number[]; magnitude: number; attnFactor: number } {
  const dim = c.qk_rope_head_dim;
  const base = c.rope_theta ?? 10000;
  const plain = Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
  const rs = c.rope_scaling;
  if (!rs || (rs.type ?? rs.rope_type) !== "yarn") return { invFreq: plain, magnitude: 1, attnFactor: 1 };
  const factor = rs.factor;
  const orig = rs.original_max_position_embeddings;
  const corr = (rot: number) => (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  const lo = Math.max(Math.floor(corr(rs.beta_fast ?? 32)), 0);
  let hi = Math.min(Math.ceil(corr(rs.beta_slow ?? 1)), dim - 1);
  if (lo === hi) hi += 0.001;
  const invFreq = plain.map((extra, i) => {
    const ramp = Math.min(1, Math.max(0, (i - lo) / (hi - lo)));
    const mask = 1 - ramp;
    return (extra / factor) * (1 - mask) + extra * mask;
  });
  const mAll = rs.mscale_all_dim ?? 0;
  const magnitude = mscaleOf(factor, rs.mscale ?? 1) / mscaleOf(factor, mAll);
  const attnFactor = mAll ? mscaleOf(factor, mAll) ** 2 : 1;
  return { invFreq, magnitude, attnFactor };
}

/** HF's interleaved RoPE: view as pairs, lay out evens then odds, then rotate-half with cat(freqs, freqs). */
function ropeHf(x: Float64Array, pos: number, invFreq: number[], magnitude: number): Float64Array {
  const d = x.length;
  const half = d / 2;
  const perm = new Float64Array(d);
  for (let i = 0; i < half; i++) {
    perm[i] = x[2 * i]!;
    perm[i + half] = x[2 * i + 1]!;
  }
  const out = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const f = invFreq[i % half]!;
    const cos = Math.cos(pos * f) * magnitude;
    const sin = Math.sin(pos * f) * magnitude;
    const rotHalf = i < half ? -perm[i + half]! : perm[i - half]!;
    out[i] = perm[i]! * cos + rotHalf * sin;
  }
  return out;
}

/** Expert ids (in any order) and weights for one token, as DeepSeek's MoEGate computes them. */
export function referenceRoute(
  logits: Float64Array,
  c: Cfg,
  bias?: Float64Array,
): { ids: number[]; weights: number[] } {
  const E = logits.length;
  const v3 = c.model_type !== "deepseek_v2";
  const method = c.topk_method ?? (v3 ? "noaux_tc" : "greedy");
  let scores: number[];
  if (method === "noaux_tc") scores = Array.from(logits, (z) => 1 / (1 + Math.exp(-z)));
  else {
    const m = Math.max(...logits);
    const e = Array.from(logits, (z) => Math.exp(z - m));
    const s = e.reduce((a, b) => a + b, 0);
    scores = e.map((v) => v / s);
  }
  let choice = method === "noaux_tc" && bias ? scores.map((s, i) => s + bias[i]!) : scores.slice();
  const nGroup = c.n_group ?? 1;
  const topkGroup = c.topk_group ?? 1;
  if (method !== "greedy" && topkGroup < nGroup) {
    const per = E / nGroup;
    const groupScore = Array.from({ length: nGroup }, (_, g) => {
      const members = choice.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
      return method === "noaux_tc" ? members[0]! + members[1]! : members[0]!;
    });
    const kept = new Set(
      groupScore
        .map((s, g) => [s, g] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, topkGroup)
        .map(([, g]) => g),
    );
    choice = choice.map((s, i) => (kept.has(Math.floor(i / per)) ? s : 0));
  }
  const k = c.num_experts_per_tok;
  const ids = choice
    .map((s, i) => [s, i] as const)
    .sort((a, b) => b[0] - a[0])
    .slice(0, k)
    .map(([, i]) => i);
  let weights = ids.map((i) => scores[i]!);
  const norm = k > 1 && c.norm_topk_prob === true;
  if (norm) {
    const s = weights.reduce((a, b) => a + b, 0) + 1e-20;
    weights = weights.map((w) => w / s);
  }
  const scale = c.routed_scaling_factor ?? 1;
  if (v3 || !norm) weights = weights.map((w) => w * scale);
  return { ids, weights };
}

/** Last-position logits of `tokens` for the float32 DeepSeek checkpoint in `dir`. */
export function referenceDeepseekLogits(dir: string, tokens: number[]): number[] {
  const c = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Cfg;
  const W = loadTensors(join(dir, "model.safetensors"));
  const t = (n: string): Tensor => {
    const x = W.get(n);
    if (!x) throw new Error(`reference: no tensor ${n}`);
    return x;
  };
  const H = c.hidden_size;
  const nH = c.num_attention_heads;
  const nope = c.qk_nope_head_dim;
  const rope = c.qk_rope_head_dim;
  const vd = c.v_head_dim;
  const lora = c.kv_lora_rank;
  const qk = nope + rope;
  const eps = c.rms_norm_eps;
  const { invFreq, magnitude, attnFactor } = rotary(c);
  const scale = qk ** -0.5 * attnFactor;
  const emb = t("model.embed_tokens.weight");
  let xs = tokens.map((tok) => emb.data.slice(tok * H, (tok + 1) * H));

  const swiglu = (x: Float64Array, p: string, expert?: number) => {
    const pick = (name: string): [Tensor, number, number] => {
      const stacked = W.get(`${p}.switch_mlp.${name}.weight`);
      if (expert === undefined || !stacked) {
        const w = t(expert === undefined ? `${p}.${name}.weight` : `${p}.experts.${expert}.${name}.weight`);
        return [w, 0, w.shape[0]!];
      }
      const [, out, inF] = stacked.shape as [number, number, number];
      return [stacked, expert * out * inF, out];
    };
    const gate = matvec(x, ...pick("gate_proj"));
    const up = matvec(x, ...pick("up_proj"));
    return matvec(
      gate.map((g, i) => silu(g) * up[i]!),
      ...pick("down_proj"),
    );
  };

  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const a = `${p}.self_attn`;
    const normed = xs.map((x) => rms(x, t(`${p}.input_layernorm.weight`).data, eps));
    const qs = normed.map((h) =>
      c.q_lora_rank == null
        ? matvec(h, t(`${a}.q_proj.weight`))
        : matvec(
            rms(matvec(h, t(`${a}.q_a_proj.weight`)), t(`${a}.q_a_layernorm.weight`).data, 1e-6),
            t(`${a}.q_b_proj.weight`),
          ),
    );
    const kvs = normed.map((h) => matvec(h, t(`${a}.kv_a_proj_with_mqa.weight`)));
    const expanded = kvs.map((kv) =>
      matvec(rms(kv.slice(0, lora), t(`${a}.kv_a_layernorm.weight`).data, 1e-6), t(`${a}.kv_b_proj.weight`)),
    );
    const kPe = kvs.map((kv, pos) => ropeHf(kv.slice(lora, lora + rope), pos, invFreq, magnitude));
    const attnOut = xs.map((_, i) => {
      const out = new Float64Array(nH * vd);
      for (let h = 0; h < nH; h++) {
        const qh = qs[i]!.slice(h * qk, (h + 1) * qk);
        const qFull = new Float64Array(qk);
        qFull.set(qh.slice(0, nope));
        qFull.set(ropeHf(qh.slice(nope), i, invFreq, magnitude), nope);
        const sc: number[] = [];
        for (let j = 0; j <= i; j++) {
          const kvh = expanded[j]!.slice(h * (nope + vd), (h + 1) * (nope + vd));
          let s = 0;
          for (let d = 0; d < nope; d++) s += qFull[d]! * kvh[d]!;
          for (let d = 0; d < rope; d++) s += qFull[nope + d]! * kPe[j]![d]!;
          sc.push(s * scale);
        }
        const m = Math.max(...sc);
        const e = sc.map((s) => Math.exp(s - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let d = 0; d < vd; d++) {
          let s = 0;
          for (let j = 0; j <= i; j++) s += (e[j]! / z) * expanded[j]![h * (nope + vd) + nope + d]!;
          out[h * vd + d] = s;
        }
      }
      return matvec(out, t(`${a}.o_proj.weight`));
    });
    xs = xs.map((x, i) => x.map((v, k) => v + attnOut[i]![k]!));
    const moe = c.n_routed_experts != null && l >= (c.first_k_dense_replace ?? 0) && l % (c.moe_layer_freq ?? 1) === 0;
    xs = xs.map((x) => {
      const m = rms(x, t(`${p}.post_attention_layernorm.weight`).data, eps);
      let y: Float64Array;
      if (!moe) y = swiglu(m, `${p}.mlp`);
      else {
        const logits = matvec(m, t(`${p}.mlp.gate.weight`));
        const { ids, weights } = referenceRoute(logits, c, W.get(`${p}.mlp.gate.e_score_correction_bias`)?.data);
        y = new Float64Array(H);
        ids.forEach((e, k) => {
          const ye = swiglu(m, `${p}.mlp`, e);
          for (let d = 0; d < H; d++) y[d] = y[d]! + weights[k]! * ye[d]!;
        });
        if ((c.n_shared_experts ?? 0) > 0) {
          const ys = swiglu(m, `${p}.mlp.shared_experts`);
          y = y.map((v, d) => v + ys[d]!);
        }
      }
      return x.map((v, k) => v + y[k]!);
    });
  }
  const last = rms(xs[xs.length - 1]!, t("model.norm.weight").data, eps);
  return Array.from(matvec(last, W.get("lm_head.weight") ?? emb));
}
