// The metadata Android's LiteRT tasks read (tflite-support's metadata_schema.fbs, file identifier
// M001): a ModelMetadata flatbuffer in the model's metadata entry TFLITE_METADATA, saying that the
// input is an RGB image normalised per channel (mean and std on the 0–255 pixel scale, as the
// ImageClassifier applies them) and that the output's classes are named in labels.txt — a file
// packed into the model as a zip archive appended to the flatbuffer, as tflite-support's
// MetadataPopulator does (the model stays a valid flatbuffer; the zip's directory is at the end).

import { Builder } from 'flatbuffers';
import type { Preprocessing } from '../../data/preprocessing.js';
import { crc32 } from '../zip.js';
import { offsetVector } from './schema.js';

export const ANDROID_METADATA_NAME = 'TFLITE_METADATA';
export const LABELS_FILE = 'labels.txt';

const METADATA_IDENTIFIER = 'M001';
// the schema's enums and union tags
const COLOR_SPACE_RGB = 1;
const CONTENT_IMAGE = 2;
const CONTENT_FEATURE = 1;
const UNIT_NORMALIZATION = 1;
const FILE_TENSOR_AXIS_LABELS = 2;
// the oldest parser that reads every field written here (1.0.0 knows them all)
const MIN_PARSER_VERSION = '1.0.0';

export interface AndroidMetadata {
  readonly name: string;
  readonly description: string;
  readonly version: string;
  readonly inputName: string;
  readonly outputName: string;
  readonly size: readonly [number, number];
  readonly preprocessing?: Pick<Preprocessing, 'mean' | 'std'>;
  readonly hasLabels: boolean;
  /** float32 (normalised by the task) or uint8 (the image's bytes, normalised inside the model). */
  readonly inputType: 'float32' | 'uint8';
}

function floats(b: Builder, values: readonly number[]): number {
  b.startVector(4, values.length, 4);
  for (let i = values.length - 1; i >= 0; i--) b.addFloat32(values[i]);
  return b.endVector();
}

/** A TensorMetadata table: name, description, content, process units, associated files. */
function tensorMetadata(b: Builder, t: { name: string; description: string; content: number; units?: number[]; files?: number[] }): number {
  const name = b.createString(t.name);
  const description = b.createString(t.description);
  const units = t.units ? offsetVector(b, t.units) : 0;
  const files = t.files ? offsetVector(b, t.files) : 0;
  b.startObject(7);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(1, description, 0);
  b.addFieldOffset(3, t.content, 0);
  if (units) b.addFieldOffset(4, units, 0);
  if (files) b.addFieldOffset(6, files, 0);
  return b.endObject();
}

/**
 * A table whose first two fields are a union: its type code (field 0) and its value (field 1), as
 * Content (content_properties) and ProcessUnit (options) are; `fields` is the table's field count.
 */
function unionTable(b: Builder, fields: number, type: number, value: number): number {
  b.startObject(fields);
  b.addFieldInt8(0, type, 0);
  b.addFieldOffset(1, value, 0);
  return b.endObject();
}

/** The ModelMetadata flatbuffer. */
export function modelMetadata(m: AndroidMetadata): Uint8Array {
  const b = new Builder(1024);
  const str = (s: string) => b.createString(s);

  // input: an image, its normalisation
  const imageSize = (() => {
    b.startObject(2);
    b.addFieldInt32(0, m.size[1], 0); // width
    b.addFieldInt32(1, m.size[0], 0); // height
    return b.endObject();
  })();
  b.startObject(2);
  b.addFieldInt8(0, COLOR_SPACE_RGB, 0);
  b.addFieldOffset(1, imageSize, 0);
  const inputContent = unionTable(b, 3, CONTENT_IMAGE, b.endObject());
  const units: number[] = [];
  if (m.preprocessing) {
    // the task feeds pixels 0–255; ours are normalised from 0–1
    const mean = floats(b, m.preprocessing.mean.map((v) => 255 * v));
    const std = floats(b, m.preprocessing.std.map((v) => 255 * v));
    b.startObject(2);
    b.addFieldOffset(0, mean, 0);
    b.addFieldOffset(1, std, 0);
    units.push(unionTable(b, 2, UNIT_NORMALIZATION, b.endObject()));
  }
  const input = tensorMetadata(b, { name: m.inputName, description: m.inputType === 'uint8' ? 'RGB image, NHWC uint8 bytes as they are (normalised inside the model)' : 'RGB image, NHWC float32, normalised per channel with the mean and std given (pixel scale)', content: inputContent, units });

  // output: class scores, named by labels.txt
  b.startObject(0);
  const outputContent = unionTable(b, 3, CONTENT_FEATURE, b.endObject());
  const files: number[] = [];
  if (m.hasLabels) {
    const fileName = str(LABELS_FILE);
    const fileDescription = str('class names, one per line, in output order');
    b.startObject(4);
    b.addFieldOffset(0, fileName, 0);
    b.addFieldOffset(1, fileDescription, 0);
    b.addFieldInt8(2, FILE_TENSOR_AXIS_LABELS, 0);
    files.push(b.endObject());
  }
  const output = tensorMetadata(b, { name: m.outputName, description: 'logits, one per class (apply softmax for probabilities)', content: outputContent, files });

  const inputs = offsetVector(b, [input]);
  const outputs = offsetVector(b, [output]);
  b.startObject(7);
  b.addFieldOffset(2, inputs, 0);
  b.addFieldOffset(3, outputs, 0);
  const subgraph = b.endObject();
  const subgraphs = offsetVector(b, [subgraph]);
  const name = str(m.name);
  const description = str(m.description);
  const version = str(m.version);
  const parser = str(MIN_PARSER_VERSION);
  b.startObject(8);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(1, description, 0);
  b.addFieldOffset(2, version, 0);
  b.addFieldOffset(3, subgraphs, 0);
  b.addFieldOffset(7, parser, 0);
  b.finish(b.endObject(), METADATA_IDENTIFIER);
  return b.asUint8Array();
}

/**
 * A zip archive holding `files` stored (not compressed), with fixed dates so that the same model
 * gives the same bytes; `base` is where the archive starts in the file it is appended to (zip
 * offsets count from the start of that file).
 */
export function storedZip(files: readonly { name: string; data: Uint8Array }[], base: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  const DOS_DATE = (1 << 5) | 1; // 1980-01-01
  for (const f of files) {
    const name = new TextEncoder().encode(f.name);
    const crc = crc32(f.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(10, 4); // version needed
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(f.data.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(10, 4);
    entry.writeUInt16LE(10, 6);
    entry.writeUInt16LE(DOS_DATE, 14);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(f.data.length, 20);
    entry.writeUInt32LE(f.data.length, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt32LE(base + offset, 42);
    parts.push(local, name, f.data);
    central.push(entry, name);
    offset += local.length + name.length + f.data.length;
  }
  const centralSize = central.reduce((n, c) => n + c.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(base + offset, 16);
  return Buffer.concat([...parts, ...central, end]);
}
