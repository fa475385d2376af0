// The element types a tensor can hold, and every fact about them in one table: bytes per element,
// the typed array that holds one exactly (float16 and bfloat16 as raw 16-bit words), and the ONNX
// TensorProto.DataType code (the spec's numbers; Cast's `to` uses them too).

export type DType = 'float32' | 'float16' | 'bfloat16' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';

export type TensorData = Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

interface DTypeFacts {
  readonly bytes: number;
  readonly array: { new (n: number): TensorData; new (buffer: ArrayBufferLike, offset: number, length: number): TensorData };
  readonly onnx: number;
}

export const DTYPES: Readonly<Record<DType, DTypeFacts>> = {
  float32: { bytes: 4, array: Float32Array, onnx: 1 },
  uint8: { bytes: 1, array: Uint8Array, onnx: 2 },
  int8: { bytes: 1, array: Int8Array, onnx: 3 },
  int32: { bytes: 4, array: Int32Array, onnx: 6 },
  int64: { bytes: 8, array: BigInt64Array, onnx: 7 },
  bool: { bytes: 1, array: Uint8Array, onnx: 9 },
  float16: { bytes: 2, array: Uint16Array, onnx: 10 },
  bfloat16: { bytes: 2, array: Uint16Array, onnx: 16 },
};

export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = Object.fromEntries(
  Object.entries(DTYPES).map(([d, f]) => [d, f.bytes]),
) as Record<DType, number>;

const BY_ONNX_CODE = new Map<number, DType>(Object.entries(DTYPES).map(([d, f]) => [f.onnx, d as DType]));

/** The dtype of an ONNX TensorProto.DataType code, or undefined for one we do not hold. */
export function dtypeFromOnnx(code: number): DType | undefined {
  return BY_ONNX_CODE.get(code);
}

export function onnxDataType(dtype: DType): number {
  return DTYPES[dtype].onnx;
}
