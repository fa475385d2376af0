// The int8 targets: a table with no imports, so that the CLI can list them without loading the quantizer.

/**
 * The int8 recipe per target: weight bits and QDQ form. x86 without VNNI multiplies u8×s8 with
 * VPMADDUBSW, whose 16-bit sums saturate with 8-bit weights: 7 bits there (and in wasm, whose
 * kernels we have not measured, to be safe). VNNI, ARM and GPUs accumulate in 32 bits: 8 bits.
 * onnxruntime's CPU kernels fuse uint8 activations with scalar scales; onnxruntime-web's WebGPU
 * needs int8 activations with vector scales (see vectorActivationScales) and has no int8 kernels.
 * Without VNNI a VPMADDUBSW does 32 multiply-adds where an FMA does 8 but needs two more instructions
 * to widen and add its sums, so int8 GEMMs there barely beat fp32's: measured, not assumed (README).
 */
export const INT8_TARGETS = {
  'cpu-avx2': {
    weightBits: 7,
    form: 'cpu',
    note: 'x86 without VNNI, exact on any x86 CPU. A 4× smaller file; without VNNI onnxruntime runs it at about fp32 speed ' +
      '(ConvNeXt-T, AVX2 AMD EPYC, one thread: 0.96–1.03× at batch 1, 1.12× at batch 32), with VNNI about twice as fast. ' +
      'For an AVX2-only CPU, --to int8-weights gives the same size at fp32 speed, without calibration and closer to fp32',
  },
  'cpu-vnni': { weightBits: 8, form: 'cpu', note: 'x86 with AVX-512 VNNI or AVX-VNNI' },
  arm64: { weightBits: 8, form: 'cpu', note: 'ARM64 (NEON dot products)' },
  wasm: { weightBits: 7, form: 'cpu', note: "onnxruntime-web's wasm" },
  webgpu: { weightBits: 8, form: 'webgpu', note: "onnxruntime-web's WebGPU: computed right, but dequantized to float there (a smaller download, not faster; fp16 is WebGPU's fast format)" },
} as const;
export type Int8Target = keyof typeof INT8_TARGETS;
export const DEFAULT_INT8_TARGET: Int8Target = 'cpu-avx2';

/** 7-bit weights unless asked otherwise, where the target's kernels saturate with 8. */
export const weightsReduced = (options: { readonly reduceRange?: boolean; readonly target?: Int8Target }): boolean =>
  options.reduceRange ?? INT8_TARGETS[options.target ?? DEFAULT_INT8_TARGET].weightBits === 7;

