// Image data sets for calibration and validation: a folder of JPEG/PNG/WebP files (labels from
// labels.txt, a CSV, or one sub-folder per class) or a preprocessed .npy tensor. Images are decoded
// with sharp and preprocessed the way the model's metadata says (resize the shorter side, centre
// crop, scale to [0, 1], normalise), and handed out batch by batch so memory does not grow with
// the number of images.

import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { InputError } from '../errors.js';
import { float32, numel, type Tensor } from '../graph/tensor.js';
import { readNpy } from '../formats/npy.js';
import { checkRegularFile, LABELS_MAX_BYTES, readTextFile } from '../formats/sniff.js';
import { preprocessPixels } from './pixels.js';
import { checkBatch, type Preprocessing } from './preprocessing.js';

export type { Preprocessing } from './preprocessing.js';

export interface Batch {
  /** [n, 3, crop, crop] float32, normalised. */
  readonly input: Tensor;
  /** Class index per image, or -1 when the image has no label. */
  readonly labels: readonly number[];
  /** Index of the first image of the batch in the data set. */
  readonly start: number;
}

export interface Dataset {
  readonly source: string;
  readonly size: number;
  /** True when every image has a label. */
  readonly labelled: boolean;
  /** The shape of one preprocessed image, [C, H, W]. */
  readonly itemShape: readonly number[];
  batches(batchSize: number): AsyncIterable<Batch>;
}

export interface DatasetOptions {
  readonly preprocessing: Preprocessing;
  /** Class names in index order (the model's labels), to resolve labels given by name. */
  readonly classNames?: readonly string[];
  /** An explicit labels file (lines `FILE LABEL`, or a CSV with file,label columns). */
  readonly labelsFile?: string;
  /** Use only the first N images. */
  readonly limit?: number;
}

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export function openDataset(path: string, options: DatasetOptions): Dataset {
  if (!existsSync(path)) throw new InputError('no such file or folder', path);
  const stat = statSync(path);
  if (stat.isFile()) {
    if (extname(path).toLowerCase() !== '.npy') throw new InputError('a data set is a folder of images or a .npy tensor [N, 3, H, W]', path);
    return npyDataset(path, options);
  }
  // a FIFO or a device is neither: refused before anything blocks on it
  if (!stat.isDirectory()) throw new InputError('a data set is a folder of images or a .npy tensor [N, 3, H, W]; this is not a regular file', path);
  return folderDataset(path, options);
}

/** Refuses data whose images do not have the shape the model takes (numeric dims of [N, C, H, W]). */
export function checkDataFits(data: Dataset, modelInput: readonly (number | string)[], where: string): void {
  const want = modelInput.slice(1);
  if (want.length !== data.itemShape.length || want.some((d, i) => typeof d === 'number' && d !== data.itemShape[i])) {
    throw new InputError(`images are [${data.itemShape.join(', ')}] but the model takes [${want.join(', ')}] (give --image-size or other data)`, where);
  }
}

/** Normalised images lie within a few units of 0; far beyond that, statistics mean nothing. */
const MAX_NORMALISED = 1e4;

// A preprocessed tensor with NaN, infinities or huge values would poison calibration histograms and
// give logits no accuracy can be read from: refuse it, saying how much of it is broken.
function checkNormalised(data: Float32Array, n: number, where: string): void {
  let nonFinite = 0;
  let huge = 0;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) nonFinite++;
    else if (Math.abs(v) > MAX_NORMALISED) huge++;
  }
  if (nonFinite) throw new InputError(`${nonFinite} of ${n} values are NaN or infinite: not a preprocessed image tensor`, where);
  if (huge) throw new InputError(`${huge} of ${n} values exceed ±${MAX_NORMALISED}: not normalised images (mean/std already applied)`, where);
}

function npyDataset(path: string, options: DatasetOptions): Dataset {
  const t = readNpy(path);
  if (t.dtype !== 'float32' || t.shape.length !== 4) {
    throw new InputError(`expected a float32 tensor [N, C, H, W], got ${t.dtype} [${t.shape.join(', ')}]`, path);
  }
  const n = Math.min(t.shape[0], options.limit ?? Infinity);
  if (n === 0) throw new InputError('the tensor holds no images (its first dimension is 0)', path);
  const per = numel(t.shape.slice(1));
  checkNormalised(t.data as Float32Array, n * per, path);
  return {
    source: path,
    size: n,
    labelled: false,
    itemShape: t.shape.slice(1),
    async *batches(batchSize: number) {
      for (let start = 0; start < n; start += batchSize) {
        const count = Math.min(batchSize, n - start);
        const data = (t.data as Float32Array).subarray(start * per, (start + count) * per);
        yield { input: float32([count, ...t.shape.slice(1)], data), labels: new Array(count).fill(-1), start };
      }
    },
  };
}

function folderDataset(dir: string, options: DatasetOptions): Dataset {
  const labelsPath = options.labelsFile ?? findLabelsFile(dir);
  const labels = labelsPath === undefined ? undefined : readLabelsFile(labelsPath, dir);
  let files: string[];
  let labelOf: (file: string) => number;
  if (labels && labelsPath !== undefined) {
    files = [...labels.keys()];
    const resolveLabel = labelResolver(options.classNames, labelsPath);
    const resolved = new Map(files.map((f) => [f, resolveLabel(labels.get(f)!)]));
    labelOf = (f) => resolved.get(f)!;
    checkEntriesInside(dir, files, labelsPath);
  } else {
    const classDirs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();
    if (classDirs.length > 0) {
      // one sub-folder per class: model label names when they match, else the sorted folder order
      const byName = options.classNames && classDirs.every((c) => options.classNames!.includes(c));
      files = [];
      const classOf = new Map<string, number>();
      classDirs.forEach((c, i) => {
        for (const f of listImages(join(dir, c))) {
          const rel = join(c, f);
          files.push(rel);
          classOf.set(rel, byName ? options.classNames!.indexOf(c) : i);
        }
      });
      labelOf = (f) => classOf.get(f)!;
    } else {
      files = listImages(dir);
      labelOf = () => -1;
    }
  }
  if (options.limit !== undefined) files = files.slice(0, options.limit);
  if (files.length === 0) throw new InputError('no images found (JPEG, PNG or WebP)', dir);
  const labelled = files.every((f) => labelOf(f) >= 0);
  return {
    source: dir,
    size: files.length,
    labelled,
    itemShape: [3, options.preprocessing.crop, options.preprocessing.crop],
    async *batches(batchSize: number) {
      for (let start = 0; start < files.length; start += batchSize) {
        const chunk = files.slice(start, start + batchSize);
        const images = await Promise.all(chunk.map((f) => loadImage(join(dir, f), options.preprocessing)));
        const { crop } = options.preprocessing;
        const input = float32([chunk.length, 3, crop, crop]);
        images.forEach((img, i) => (input.data as Float32Array).set(img, i * img.length));
        yield { input, labels: chunk.map(labelOf), start };
      }
    },
  };
}

function listImages(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort();
}

/** labels.txt or labels.csv in the folder, if present. */
function findLabelsFile(dir: string): string | undefined {
  return ['labels.txt', 'labels.csv'].map((name) => join(dir, name)).find((p) => existsSync(p));
}

// `FILE LABEL` per line (whitespace or a comma between), a CSV header line is skipped. File names are
// relative to the data folder.
function readLabelsFile(path: string, dir: string): Map<string, string> {
  if (!existsSync(path)) throw new InputError('no such labels file', path);
  const out = new Map<string, string>();
  const lines = readTextFile(path, 'a labels file', LABELS_MAX_BYTES).split(/\r?\n/);
  lines.forEach((line, i) => {
    const text = line.trim();
    if (!text || text.startsWith('#')) return;
    const parts = splitLabelLine(text);
    if (!parts) throw new InputError(`line ${i + 1}: expected "FILE LABEL", got ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}`, path);
    const [file, label] = parts;
    if (i === 0 && /^(file|filename|image|path)$/i.test(file)) return; // CSV header
    const rel = file.startsWith('/') ? relative(dir, file) : file;
    out.set(rel, label);
  });
  return out;
}

/**
 * A trimmed line split into [file, label] exactly as /^(.+?)\s*[,\s]\s*([^,]+)$/ (label trimmed)
 * would, without that pattern's cubic backtracking on long runs of spaces: the label follows the
 * last comma when there is text on both sides of it; otherwise the first whitespace after any
 * comma ends the file name.
 */
export function splitLabelLine(text: string): [string, string] | undefined {
  const comma = text.lastIndexOf(',');
  if (comma >= 1 && comma < text.length - 1) return [text.slice(0, comma).trimEnd(), text.slice(comma + 1).trim()];
  if (comma === text.length - 1) return undefined;
  for (let i = comma + 1; i < text.length; i++) {
    if (/\s/.test(text[i])) return [text.slice(0, i), text.slice(i).trim()];
  }
  return undefined;
}

/** Labels entries may not leave the data folder, by `..`, an absolute path or a symlink. */
function checkEntriesInside(dir: string, files: readonly string[], labelsPath: string): void {
  const root = realpathSync(dir);
  const inside = (path: string) => {
    const rel = relative(root, path);
    return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  };
  for (const f of files) {
    const path = join(dir, f);
    // The lexical check first, so whether a file outside exists is never told.
    if (!inside(resolve(root, f))) throw new InputError(`labels entry '${f}' points outside the data folder`, labelsPath);
    if (!existsSync(path)) throw new InputError(`labels name ${f}, which is not in the folder`, dir);
    if (!inside(realpathSync(path))) throw new InputError(`labels entry '${f}' points outside the data folder (through a symbolic link)`, labelsPath);
  }
}

function labelResolver(classNames: readonly string[] | undefined, where: string): (label: string) => number {
  return (label) => {
    if (/^\d+$/.test(label)) {
      const i = Number(label);
      if (classNames && i >= classNames.length) throw new InputError(`label ${i} is not a class of the model (it has ${classNames.length})`, where);
      return i;
    }
    const i = classNames ? classNames.indexOf(label) : -1;
    if (i < 0) throw new InputError(`label ${JSON.stringify(label)} is neither a class index nor one of the model's class names`, where);
    return i;
  };
}

/** One image as [3, crop, crop] float32, normalised. */
export async function loadImage(path: string, p: Preprocessing): Promise<Float32Array> {
  let raw: { data: Buffer; info: { width: number; height: number; channels: number } };
  // sharp would block one of libuv's few threads for good on a FIFO named like an image.
  checkRegularFile(path);
  try {
    raw = await sharp(path, { failOn: 'error' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new InputError(`cannot decode image (${(e as Error).message})`, path);
  }
  const { data, info } = raw;
  return preprocessPixels(data, info.width, info.height, info.channels, p);
}

/**
 * A data set read more than once (calibration), decoded on its first full pass and served from
 * memory after, when the decoded images fit in `maxBytes`; otherwise the data set itself.
 */
export function decodedOnce(data: Dataset, maxBytes: number): Dataset {
  const per = numel(data.itemShape);
  if (data.size * per * Float32Array.BYTES_PER_ELEMENT > maxBytes) return data;
  let decoded: { images: Float32Array; labels: number[] } | undefined;
  return {
    ...data,
    async *batches(batchSize: number) {
      if (decoded) {
        const { images, labels } = decoded;
        for (let start = 0; start < data.size; start += batchSize) {
          const n = Math.min(batchSize, data.size - start);
          yield { input: float32([n, ...data.itemShape], images.subarray(start * per, (start + n) * per)), labels: labels.slice(start, start + n), start };
        }
        return;
      }
      const images = new Float32Array(data.size * per);
      const labels: number[] = [];
      let seen = 0;
      for await (const b of data.batches(batchSize)) {
        images.set(b.input.data as Float32Array, b.start * per);
        labels.push(...b.labels);
        seen += b.labels.length;
        yield b;
      }
      if (seen === data.size) decoded = { images, labels };
    },
  };
}

/**
 * The batch size to read `data` with: the one asked for, no larger than the data set (a bigger
 * batch would only allocate the difference), and within the input-size bound.
 */
export function batchSizeFor(data: Dataset, requested: number): number {
  return checkBatch(Math.min(requested, data.size), data.itemShape, '--batch-size');
}
