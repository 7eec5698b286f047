// Plain data shared by config, topology and placement: what a node can do, in exo's units, and the layer
// range every stage, shard and download request is made of.

/**
 * Layers of a model, half-open: layerStart included, layerEnd excluded (exo's inclusive end_layer exists only
 * on its wire shapes). The one definition: plan stages, shard specs and download requests extend it.
 */
export interface LayerRange {
  layerStart: number;
  layerEnd: number;
}

/** Peak throughput in TFLOPS (informational; placement uses memory only, as exo did). */
export interface DeviceFlops {
  fp32: number;
  fp16: number;
  int8: number;
}

/** exo's DeviceCapabilities: `memory` is in MB (bytes / 2^20), kept under exo's key names for the wire and /topology. */
export interface DeviceCapabilities {
  model: string;
  chip: string;
  memory: number;
  flops: DeviceFlops;
}

/** What a node reports when nothing is known about it (exo's UNKNOWN_DEVICE_CAPABILITIES). */
export const UNKNOWN_CAPABILITIES: DeviceCapabilities = Object.freeze({
  model: "Unknown Model",
  chip: "Unknown Chip",
  memory: 0,
  flops: Object.freeze({ fp32: 0, fp16: 0, int8: 0 }),
});
