// The fake engine as `--engine fake` runs it on a node: re-created on each load with the loaded model's
// vocabulary (and its EOS id, which the fake never samples), so requests run to max_tokens and decode to text.
import { readConfigFileIfAny } from "../models/spec/config-file.ts";
import { configEosIds, configVocabSize } from "../models/spec/describe.ts";
import { createFakeEngine } from "./fake-engine.ts";
import type { ShardEngine } from "./types.ts";

/** Vocabulary of a model directory the fake engine cannot read a config.json from. */
const DEFAULT_VOCAB_SIZE = 256;

/** A fake engine sized to each loaded model; `stepDelayMs` is awaited per step (--fake-step-ms), `maxLiveRequests` is --max-live. */
export function createModelSizedFakeEngine(stepDelayMs: number, maxLiveRequests?: number): ShardEngine {
  const limit = maxLiveRequests === undefined ? {} : { maxLiveRequests };
  let inner = createFakeEngine({ stepDelayMs, ...limit });
  return {
    async load(spec, onProgress) {
      const config = await readConfigFileIfAny(spec.modelDir);
      const eos = configEosIds(config)[0];
      await inner.close();
      const vocabSize = configVocabSize(config) ?? DEFAULT_VOCAB_SIZE;
      inner = createFakeEngine({
        stepDelayMs,
        vocabSize,
        ...limit,
        ...(typeof eos === "number" ? { eosToken: eos } : {}),
      });
      return inner.load(spec, onProgress);
    },
    loaded: () => inner.loaded(),
    unload: () => inner.unload(),
    step: (requestId, input, sampling) => inner.step(requestId, input, sampling),
    end: (requestId) => inner.end(requestId),
    liveRequests: () => inner.liveRequests(),
    close: () => inner.close(),
  };
}
