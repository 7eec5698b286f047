// A plain-JS float64 forward pass of every supported architecture, written from the HF modelling code
// (no MLX): the model tests compare the MLX models against it so a wrong RoPE, norm or mask cannot hide.
// Tiny checkpoints only (float32 safetensors, one file or several with an index); it returns last-position
// logits. Mixture-of-Experts (qwen3_moe, qwen2_moe) follows Qwen3MoeSparseMoeBlock / Qwen2MoeSparseMoeBlock:
// softmax router in float, top-k, renormalised when norm_topk_prob, per-expert SwiGLU, shared expert gated
// by a sigmoid; dense layers from mlp_only_layers and decoder_sparse_step.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

type Mat = { rows: number; cols: number; data: Float64Array };
type Cfg = Record<string, any>;

export function loadTensors(path: string): Map<string, { shape: number[]; data: Float64Array }> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, any>;
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (e.dtype !== "F32") throw new Error(`reference forward reads F32 only, ${name} is ${e.dtype}`);
    const bytes = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
    out.set(name, { shape: e.shape, data: Float64Array.from(new Float32Array(new Uint8Array(bytes).buffer)) });
  }
  return out;
}

/** Every tensor of the checkpoint in `dir`, from model.safetensors or the files its index names. */
function loadCheckpoint(dir: string): Map<string, { shape: number[]; data: Float64Array }> {
  const indexPath = join(dir, "model.safetensors.index.json");
  if (!existsSync(indexPath)) return loadTensors(join(dir, "model.safetensors"));
  const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> };
  const all = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const file of new Set(Object.values(index.weight_map)))
    for (const [n, t] of loadTensors(join(dir, file))) all.set(n, t);
  return all;
}

const mat = (rows: number, cols: number, data = new Float64Array(rows * cols)): Mat => ({ rows, cols, data });
const row = (m: Mat, i: number) => m.data.subarray(i * m.cols, (i + 1) * m.cols);

/** x [L, in] · Wᵀ where W is [out, in]. */
function linear(x: Mat, w: { shape: number[]; data: Float64Array }, bias?: Float64Array): Mat {
  const [out, inF] = w.shape as [number, number];
  const y = mat(x.rows, out);
  for (let i = 0; i < x.rows; i++) {
    const xi = row(x, i);
    for (let o = 0; o < out; o++) {
      let s = bias ? bias[o]! : 0;
      for (let k = 0; k < inF; k++) s += xi[k]! * w.data[o * inF + k]!;
      y.data[i * out + o] = s;
    }
  }
  return y;
}

function map(x: Mat, f: (v: number, i: number) => number): Mat {
  return mat(x.rows, x.cols, x.data.map(f));
}

/** RMSNorm over each `width`-wide slice; Gemma scales by (1 + w). */
function rmsNorm(x: Mat, w: Float64Array, eps: number, gemma = false, width = x.cols): Mat {
  const y = mat(x.rows, x.cols);
  for (let s = 0; s < x.data.length; s += width) {
    let ms = 0;
    for (let k = 0; k < width; k++) ms += x.data[s + k]! ** 2;
    const r = 1 / Math.sqrt(ms / width + eps);
    for (let k = 0; k < width; k++) y.data[s + k] = x.data[s + k]! * r * (gemma ? 1 + w[k]! : w[k]!);
  }
  return y;
}

function invFreqs(c: Cfg, dims: number): { f: number[]; mscale: number } {
  const base = c.rope_theta;
  let f = Array.from({ length: dims / 2 }, (_, i) => 1 / base ** ((2 * i) / dims));
  const rs = c.rope_scaling;
  const kind = rs?.rope_type ?? rs?.type;
  if (kind === "llama3") {
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = rs;
    f = f.map((x) => {
      const wl = (2 * Math.PI) / x;
      if (wl < old / hi) return x;
      if (wl > old / lo) return x / factor;
      const smooth = (old / wl - lo) / (hi - lo);
      return (1 - smooth) * (x / factor) + smooth * x;
    });
  }
  if (kind === "longrope") {
    f = rs.long_factor.map((lf: number, i: number) => 1 / (lf * base ** ((2 * i) / dims)));
    const r = c.max_position_embeddings / rs.original_max_position_embeddings;
    return { f, mscale: Math.sqrt(1 + Math.log(r) / Math.log(rs.original_max_position_embeddings)) };
  }
  return { f, mscale: 1 };
}

/** Rotate-half RoPE on x [L, heads*D] for positions 0..L-1 over the first `dims` of each head. */
function rope(x: Mat, heads: number, D: number, c: Cfg): Mat {
  const dims = Math.round(D * (c.partial_rotary_factor ?? 1));
  const { f, mscale } = invFreqs(c, dims);
  const y = mat(x.rows, x.cols, x.data.slice());
  const half = dims / 2;
  for (let p = 0; p < x.rows; p++)
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < half; i++) {
        const a = x.data[p * x.cols + h * D + i]!;
        const b = x.data[p * x.cols + h * D + i + half]!;
        const cos = Math.cos(p * f[i]!) * mscale;
        const sin = Math.sin(p * f[i]!) * mscale;
        y.data[p * x.cols + h * D + i] = a * cos - b * sin;
        y.data[p * x.cols + h * D + i + half] = b * cos + a * sin;
      }
  return y;
}

function attention(q: Mat, k: Mat, v: Mat, c: Cfg, D: number, layer: number, gemma: boolean): Mat {
  const nH = c.num_attention_heads;
  const rep = nH / c.num_key_value_heads;
  const L = q.rows;
  const scale = gemma ? c.query_pre_attn_scalar ** -0.5 : D ** -0.5;
  const out = mat(L, nH * D);
  for (let h = 0; h < nH; h++) {
    const kvh = Math.floor(h / rep);
    for (let i = 0; i < L; i++) {
      const scores: number[] = [];
      for (let j = 0; j < L; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q.data[i * q.cols + h * D + d]! * k.data[j * k.cols + kvh * D + d]!;
        s *= scale;
        if (gemma) s = Math.tanh(s / c.attn_logit_softcapping) * c.attn_logit_softcapping;
        const masked = j > i || (gemma && layer % 2 === 0 && i - j >= c.sliding_window);
        scores.push(masked ? -Infinity : s);
      }
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        let s = 0;
        for (let j = 0; j < L; j++) s += (e[j]! / z) * v.data[j * v.cols + kvh * D + d]!;
        out.data[i * out.cols + h * D + d] = s;
      }
    }
  }
  return out;
}

const add = (a: Mat, b: Mat) => map(a, (x, i) => x + b.data[i]!);
const slice = (x: Mat, from: number, to: number) => {
  const y = mat(x.rows, to - from);
  for (let i = 0; i < x.rows; i++) y.data.set(x.data.subarray(i * x.cols + from, i * x.cols + to), i * y.cols);
  return y;
};

type Tensor = { shape: number[]; data: Float64Array };
const silu = (v: number) => v / (1 + Math.exp(-v));
const swigluMlp = (x: Mat, gate: Tensor, up: Tensor, down: Tensor): Mat => {
  const u = linear(x, up);
  return linear(
    map(linear(x, gate), (val, i) => silu(val) * u.data[i]!),
    down,
  );
};

/** The sparse MoE block for normed hidden states m [L, H]; `t(name)` reads `….mlp.${name}`. */
function moeBlock(m: Mat, c: Cfg, t: (name: string) => Tensor): Mat {
  const E: number = c.num_experts;
  const k: number = c.num_experts_per_tok;
  const logits = linear(m, t("gate.weight"));
  const out = mat(m.rows, m.cols);
  for (let i = 0; i < m.rows; i++) {
    const z = Array.from(row(logits, i));
    const top = Math.max(...z);
    const e = z.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    const probs = e.map((v) => v / sum);
    const chosen = probs
      .map((p, j) => [p, j] as const)
      .sort((a, b) => b[0] - a[0])
      .slice(0, k);
    const norm = c.norm_topk_prob ? chosen.reduce((a, [p]) => a + p, 0) : 1;
    const xi = mat(1, m.cols, row(m, i).slice());
    const yi = row(out, i);
    for (const [p, j] of chosen) {
      if (j >= E) throw new Error("reference: expert out of range");
      const y = swigluMlp(
        xi,
        t(`experts.${j}.gate_proj.weight`),
        t(`experts.${j}.up_proj.weight`),
        t(`experts.${j}.down_proj.weight`),
      );
      for (let d = 0; d < m.cols; d++) yi[d]! += (p / norm) * y.data[d]!;
    }
    if ((c.shared_expert_intermediate_size ?? 0) > 0) {
      const g = linear(xi, t("shared_expert_gate.weight")).data[0]!;
      const y = swigluMlp(
        xi,
        t("shared_expert.gate_proj.weight"),
        t("shared_expert.up_proj.weight"),
        t("shared_expert.down_proj.weight"),
      );
      const s = 1 / (1 + Math.exp(-g));
      for (let d = 0; d < m.cols; d++) yi[d]! += s * y.data[d]!;
    }
  }
  return out;
}

/** Last-position logits of `tokens` for the float32 checkpoint in `dir`. */
export function referenceLogits(dir: string, tokens: number[]): number[] {
  const c = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Cfg;
  const W = loadCheckpoint(dir);
  const t = (n: string) => {
    const x = W.get(n);
    if (!x) throw new Error(`reference: no tensor ${n}`);
    return x;
  };
  const type = c.model_type as string;
  const gemma = type === "gemma2";
  const H = c.hidden_size;
  const nH = c.num_attention_heads;
  const nKv = c.num_key_value_heads;
  const D = c.head_dim ?? H / nH;
  const I = c.intermediate_size;
  const eps = c.rms_norm_eps;
  const emb = t("model.embed_tokens.weight");
  let x = mat(tokens.length, H);
  tokens.forEach((tok, i) => x.data.set(emb.data.subarray(tok * H, (tok + 1) * H), i * H));
  if (gemma) x = map(x, (v) => v * Math.sqrt(H));
  const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    const h = rmsNorm(x, t(`${p}input_layernorm.weight`).data, eps, gemma);
    let q: Mat, k: Mat, v: Mat;
    if (type === "phi3") {
      const qkv = linear(h, t(`${p}self_attn.qkv_proj.weight`));
      [q, k, v] = [
        slice(qkv, 0, nH * D),
        slice(qkv, nH * D, (nH + nKv) * D),
        slice(qkv, (nH + nKv) * D, (nH + 2 * nKv) * D),
      ];
    } else {
      const b = (n: string) => W.get(`${p}self_attn.${n}.bias`)?.data;
      [q, k, v] = ["q_proj", "k_proj", "v_proj"].map((n) => linear(h, t(`${p}self_attn.${n}.weight`), b(n))) as [
        Mat,
        Mat,
        Mat,
      ];
    }
    if (type === "qwen3" || type === "qwen3_moe") {
      q = rmsNorm(q, t(`${p}self_attn.q_norm.weight`).data, eps, false, D);
      k = rmsNorm(k, t(`${p}self_attn.k_norm.weight`).data, eps, false, D);
    }
    const o = linear(
      attention(rope(q, nH, D, c), rope(k, nKv, D, c), v, c, D, l, gemma),
      t(`${p}self_attn.o_proj.weight`),
    );
    if (gemma) {
      x = add(x, rmsNorm(o, t(`${p}post_attention_layernorm.weight`).data, eps, true));
      const m = rmsNorm(x, t(`${p}pre_feedforward_layernorm.weight`).data, eps, true);
      const up = linear(m, t(`${p}mlp.up_proj.weight`));
      const g = map(linear(m, t(`${p}mlp.gate_proj.weight`)), (val, i) => gelu(val) * up.data[i]!);
      x = add(
        x,
        rmsNorm(linear(g, t(`${p}mlp.down_proj.weight`)), t(`${p}post_feedforward_layernorm.weight`).data, eps, true),
      );
      continue;
    }
    x = add(x, o);
    const m = rmsNorm(x, t(`${p}post_attention_layernorm.weight`).data, eps);
    const sparse =
      c.num_experts > 0 && !(c.mlp_only_layers ?? []).includes(l) && (l + 1) % (c.decoder_sparse_step ?? 1) === 0;
    if (type.endsWith("_moe") && sparse) {
      x = add(
        x,
        moeBlock(m, c, (n) => t(`${p}mlp.${n}`)),
      );
      continue;
    }
    let gate: Mat, up: Mat;
    if (type === "phi3") {
      const gu = linear(m, t(`${p}mlp.gate_up_proj.weight`));
      [gate, up] = [slice(gu, 0, I), slice(gu, I, 2 * I)];
    } else [gate, up] = [linear(m, t(`${p}mlp.gate_proj.weight`)), linear(m, t(`${p}mlp.up_proj.weight`))];
    x = add(
      x,
      linear(
        map(gate, (val, i) => silu(val) * up.data[i]!),
        t(`${p}mlp.down_proj.weight`),
      ),
    );
  }
  const last = mat(1, H, x.data.slice((x.rows - 1) * H));
  const head = W.get("lm_head.weight") ?? emb;
  let logits = Array.from(linear(rmsNorm(last, t("model.norm.weight").data, eps, gemma), head).data);
  if (gemma) logits = logits.map((z) => Math.tanh(z / c.final_logit_softcapping) * c.final_logit_softcapping);
  return logits;
}
