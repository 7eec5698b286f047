// What the rest of the node learns from a config.json without building a model: the catalog's description
// (layers, architecture, quantization), download's shape (layer count, head tying) and the vocabulary's
// end tokens. Lenient where parseModelArgs is strict: it describes models this build cannot run, too.
import { NodeError } from "../../errors.ts";
import { architectureSpec, isSupportedModelType } from "./architectures.ts";
import { expertShare, storedWeightBytes } from "./footprint.ts";
import { parseModelArgs, type Json } from "./model-args.ts";
import type { Quantization } from "./quantization.ts";

/** Multimodal configs keep the language model's keys under text_config. */
function textConfig(config: Json): Json | undefined {
  const t = config.text_config;
  return t && typeof t === "object" ? (t as Json) : undefined;
}

export interface ConfigDescription {
  layers?: number;
  arch?: string;
  quantization?: Quantization;
  /** Weight bytes as stored, every expert counted (architectures this build runs). */
  sizeBytes?: number;
  /** Share of the parameters that are routed experts (architectures this build runs). */
  expertShare?: number;
}

/** Layer count, architecture, quantization and (for architectures this build runs) size from a config.json object. */
export function describeConfig(config: Json): ConfigDescription {
  const layers = config.num_hidden_layers ?? textConfig(config)?.num_hidden_layers;
  const bits = (config.quantization as { bits?: unknown } | undefined)?.bits;
  const dtype = config.torch_dtype;
  const quantization: Quantization | undefined =
    typeof bits === "number"
      ? `${bits}bit`
      : dtype === "bfloat16"
        ? "bf16"
        : dtype === "float16"
          ? "fp16"
          : dtype === "float32"
            ? "fp32"
            : undefined;
  return {
    ...(typeof layers === "number" ? { layers } : {}),
    ...(typeof config.model_type === "string" ? { arch: config.model_type } : {}),
    ...(quantization ? { quantization } : {}),
    ...sizeOf(config, quantization === "fp32" ? 32 : 16),
  };
}

function sizeOf(config: Json, floatBits: number): { sizeBytes?: number; expertShare?: number } {
  if (typeof config.model_type !== "string" || !isSupportedModelType(config.model_type)) return {};
  try {
    const args = parseModelArgs(config);
    return { sizeBytes: storedWeightBytes(args, floatBits), expertShare: expertShare(args) };
  } catch {
    // A config this build cannot parse is refused later, when the model is loaded, naming the key.
    return {};
  }
}

/**
 * What download selection needs: the layer count and whether the head is tied (config.json says so or the
 * architecture always ties). @throws E_WEIGHTS
 */
export function modelShape(config: Json, repo: string): { nLayers: number; tied: boolean } {
  const text = textConfig(config);
  const nLayers = config.num_hidden_layers ?? text?.num_hidden_layers;
  if (typeof nLayers !== "number") throw new NodeError("E_WEIGHTS", `${repo}'s config.json has no num_hidden_layers`);
  const type = config.model_type;
  const alwaysTied =
    typeof type === "string" && isSupportedModelType(type) && architectureSpec(type).alwaysTied === true;
  return { nLayers, tied: alwaysTied || config.tie_word_embeddings === true || text?.tie_word_embeddings === true };
}

/** Token ids that end generation, as config.json lists them (a number or a list). */
export function configEosIds(config: Json | undefined): number[] {
  const v = config?.eos_token_id;
  return (Array.isArray(v) ? v : [v]).filter((x): x is number => typeof x === "number" && Number.isInteger(x));
}

/** The vocabulary size config.json states, if any. */
export function configVocabSize(config: Json | undefined): number | undefined {
  const v = config?.vocab_size;
  return typeof v === "number" && Number.isInteger(v) && v > 0 ? v : undefined;
}
