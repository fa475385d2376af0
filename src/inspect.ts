// The inspect verb: what a checkpoint or ONNX model is, without converting it.

import { loadCheckpoint, type Assumption } from './convnext/load.js';
import { parameterCount, tapWidth, type NormKind, type StemKind } from './convnext/spec.js';
import { Warnings } from './errors.js';
import { decodeOnnx } from './formats/onnx.js';
import { externalDataReader } from './formats/external-data.js';
import { identify } from './formats/registry.js';
import { readInputFileSync } from './formats/sniff.js';
import { numel } from './graph/tensor.js';

export interface CheckpointInfo {
  readonly kind: 'checkpoint';
  readonly file: string;
  readonly bytes: number;
  readonly format: string;
  readonly layout: string;
  readonly stateDictKey: string | null;
  readonly version: string;
  readonly variant: string;
  readonly depths: readonly number[];
  readonly widths: readonly number[];
  readonly numClasses: number;
  readonly layerScale: boolean;
  /** timm's stem_type as the weights hold it ('overlap' covers overlap_tiered), and the norm's kind. */
  readonly stem: StemKind;
  readonly norm: NormKind;
  readonly parameters: number;
  readonly dtypes: Readonly<Record<string, number>>;
  readonly imageSize: number;
  readonly labels: number;
  /** Constants the weights do not hold, and where each value came from. */
  readonly assumed: readonly Assumption[];
  /** A backbone's feature maps (what convert gives by default): channels and stride from the input. */
  readonly outFeatures?: readonly { name: string; channels: number; stride: number; norm: boolean }[];
  readonly warnings: readonly string[];
}

export interface OnnxInfo {
  readonly kind: 'onnx';
  readonly file: string;
  readonly bytes: number;
  readonly opsets: Readonly<Record<string, number>>;
  readonly inputs: readonly { name: string; dtype: string; shape: readonly (number | string)[] }[];
  readonly outputs: readonly { name: string; dtype: string; shape: readonly (number | string)[] }[];
  readonly nodes: number;
  readonly ops: Readonly<Record<string, number>>;
  readonly initializers: number;
  readonly parameters: number;
  readonly dtypes: Readonly<Record<string, number>>;
  readonly metadata: Readonly<Record<string, string>>;
}

export async function inspect(path: string): Promise<CheckpointInfo | OnnxInfo> {
  const { probe, format } = await identify(path);
  if (format?.name === 'onnx') return inspectOnnx(path, probe.size);
  const warnings = new Warnings();
  const c = await loadCheckpoint(path, { warnings });
  const { spec } = c.model;
  return {
    kind: 'checkpoint',
    file: path,
    bytes: c.fileBytes,
    format: c.format,
    layout: c.layout,
    stateDictKey: c.stateDictKey ?? null,
    version: spec.version,
    variant: c.variant,
    depths: spec.depths,
    widths: spec.widths,
    numClasses: spec.numClasses,
    layerScale: spec.layerScale,
    stem: spec.stem,
    norm: spec.norm,
    parameters: parameterCount(c.model.params),
    dtypes: c.storedDtypes,
    imageSize: c.imageSize,
    labels: c.labels?.length ?? 0,
    assumed: c.assumed,
    ...(c.features && {
      outFeatures: c.features.map((f) => ({ name: f.name, channels: tapWidth(spec, f.tap), stride: spec.patchSize * 2 ** Math.max(0, f.tap - 1), norm: f.norm })),
    }),
    warnings: warnings.items,
  };
}

function inspectOnnx(path: string, bytes: number): OnnxInfo {
  const graph = decodeOnnx(readInputFileSync(path), { source: path, readExternal: externalDataReader(path) });
  const ops: Record<string, number> = {};
  for (const n of graph.nodes) ops[n.op] = (ops[n.op] ?? 0) + 1;
  // MatMulNBits packs 8/bits weights into each byte of its uint8 B: counted as weights of that width
  const packed = new Map<string, number>();
  for (const n of graph.nodes) {
    const bits = n.attrs.bits?.kind === 'int' ? Number(n.attrs.bits.value) : 4;
    if (n.op === 'MatMulNBits' && n.domain === 'com.microsoft' && [2, 4, 8].includes(bits)) packed.set(n.inputs[1], bits);
  }
  const dtypes: Record<string, number> = {};
  let parameters = 0;
  for (const [name, t] of graph.initializers) {
    const bits = t.dtype === 'uint8' ? packed.get(name) : undefined;
    const n = numel(t.shape) * (bits ? 8 / bits : 1);
    const dtype = bits ? `int${bits}` : t.dtype;
    parameters += n;
    dtypes[dtype] = (dtypes[dtype] ?? 0) + n;
  }
  return {
    kind: 'onnx',
    file: path,
    bytes,
    opsets: graph.opsets,
    inputs: graph.inputs,
    outputs: graph.outputs,
    nodes: graph.nodes.length,
    ops,
    initializers: graph.initializers.size,
    parameters,
    dtypes,
    metadata: graph.metadata,
  };
}
