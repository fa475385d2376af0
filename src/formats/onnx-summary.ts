// What validate needs from an ONNX file before onnxruntime loads it: the metadata (labels,
// preprocessing) and the graph's inputs. Read by walking the protobuf wire format with positional
// reads and skipping every payload it does not need, tensor data above all: a 100 MB model costs a
// few kilobytes of reads, not a full decode held in memory beside onnxruntime's own copy.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type OnnxProto from 'onnx-proto';
import { onnxProto } from './onnx-proto.js';
import { InputError } from '../errors.js';
import type { ValueInfo } from '../graph/graph.js';
import { decodeValueInfo } from './onnx.js';
import { checkRegularFile } from './sniff.js';

const { onnx } = onnxProto;

export interface OnnxSummary {
  readonly metadata: Record<string, string>;
  /** The graph inputs that are not initializers, as decodeOnnx gives them. */
  readonly inputs: readonly ValueInfo[];
  /** The side files its initializers name (external data `location`s), as written. */
  readonly externalData: readonly string[];
}

// field numbers (onnx.proto)
const MODEL_GRAPH = 7;
const MODEL_METADATA = 14;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const TENSOR_NAME = 8;
const TENSOR_EXTERNAL_DATA = 13;

export function readOnnxSummary(path: string): OnnxSummary {
  checkRegularFile(path); // before the open, which would block on a FIFO
  const fd = openSync(path, 'r');
  try {
    const file = new WireFile(fd, fstatSync(fd).size, path);
    const metadata: Record<string, string> = {};
    const inputs: ValueInfo[] = [];
    const initializers = new Set<string>();
    const externalData = new Set<string>();
    const text = (at: number, length: number) => new TextDecoder().decode(file.read(at, length));
    file.fields(0, file.size, (field, at, length) => {
      if (field === MODEL_METADATA) {
        const entry = file.decode(onnx.StringStringEntryProto, at, length);
        metadata[entry.key ?? ''] = entry.value ?? '';
      } else if (field === MODEL_GRAPH) {
        file.fields(at, at + length, (f, a, l) => {
          if (f === GRAPH_INPUT) inputs.push(decodeValueInfo(file.decode(onnx.ValueInfoProto, a, l), { source: path }));
          else if (f === GRAPH_INITIALIZER) {
            file.fields(a, a + l, (tf, ta, tl) => {
              if (tf === TENSOR_NAME) initializers.add(text(ta, tl));
              else if (tf === TENSOR_EXTERNAL_DATA) {
                const entry = file.decode(onnx.StringStringEntryProto, ta, tl);
                if (entry.key === 'location' && entry.value) externalData.add(entry.value);
              }
            });
          }
        });
      }
    });
    return { metadata, inputs: inputs.filter((v) => !initializers.has(v.name)), externalData: [...externalData] };
  } finally {
    closeSync(fd);
  }
}

class WireFile {
  constructor(
    private readonly fd: number,
    readonly size: number,
    private readonly source: string,
  ) {}

  read(at: number, length: number): Uint8Array {
    if (at < 0 || at + length > this.size) throw this.broken();
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, at + done);
      if (n === 0) throw this.broken();
      done += n;
    }
    return out;
  }

  /** One field's message, decoded by protobufjs, whose errors (a bad wire type, a length past the end) are the file's. */
  decode<T>(type: { decode(bytes: Uint8Array): T }, at: number, length: number): T {
    const bytes = this.read(at, length);
    try {
      return type.decode(bytes);
    } catch {
      throw this.broken();
    }
  }

  /** Calls `visit` with the offset and length of every length-delimited field in [start, end); skips the rest. */
  fields(start: number, end: number, visit: (field: number, at: number, length: number) => void): void {
    let at = start;
    while (at < end) {
      const tag = this.varint(at, end);
      at = tag.next;
      const field = Math.floor(tag.value / 8);
      switch (tag.value % 8) {
        case 0:
          at = this.varint(at, end).next;
          break;
        case 1:
          at += 8;
          break;
        case 2: {
          const length = this.varint(at, end);
          at = length.next;
          if (at + length.value > end) throw this.broken();
          visit(field, at, length.value);
          at += length.value;
          break;
        }
        case 5:
          at += 4;
          break;
        default:
          throw this.broken();
      }
    }
    if (at !== end) throw this.broken();
  }

  private varint(at: number, end: number): { value: number; next: number } {
    const bytes = this.read(at, Math.min(10, end - at));
    let value = 0;
    for (let i = 0; i < bytes.length; i++) {
      value += (bytes[i] & 0x7f) * 2 ** (7 * i);
      if (bytes[i] < 0x80) return { value, next: at + i + 1 };
    }
    throw this.broken();
  }

  private broken(): InputError {
    return new InputError('not a valid ONNX model (its protobuf encoding is broken or truncated)', this.source);
  }
}
