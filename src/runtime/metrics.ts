// Accuracy against labels and agreement against a reference model, from logits laid out as
// [images, classes] row by row.

export interface Accuracy {
  readonly images: number;
  /** Share of images whose top class is the label, in percent. */
  readonly top1: number;
  readonly top5: number;
  readonly perClass: readonly { readonly correct: number; readonly total: number }[];
}

export interface Agreement {
  /** Share of images with the same top class as the reference, in percent. */
  readonly top1Agreement: number;
  readonly meanCosine: number;
  readonly maxAbsError: number;
  /** Signal-to-quantization-noise ratio of the logits, in dB. */
  readonly sqnrDb: number;
}

/** The top class, or -1 when the row holds NaN or ±Inf (such an output never counts as right). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 0; i < row.length; i++) {
    if (!Number.isFinite(row[i])) return -1;
    if (row[i] > row[best]) best = i;
  }
  return best;
}

function rows(logits: Float32Array, classes: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < logits.length; i += classes) out.push(logits.subarray(i, i + classes));
  return out;
}

export function accuracy(logits: Float32Array, classes: number, labels: readonly number[]): Accuracy {
  const perClass = Array.from({ length: classes }, () => ({ correct: 0, total: 0 }));
  let top1 = 0;
  let top5 = 0;
  rows(logits, classes).forEach((row, i) => {
    const label = labels[i];
    const mine = row[label];
    // rank of the label's logit; a tie counts against it, and a non-finite row is always wrong
    let higher = argmax(row) < 0 ? classes : 0;
    for (let c = 0; c < classes && higher < classes; c++) if (row[c] > mine || (row[c] === mine && c < label)) higher++;
    perClass[label].total++;
    if (higher === 0) {
      top1++;
      perClass[label].correct++;
    }
    if (higher < 5) top5++;
  });
  const n = labels.length;
  return { images: n, top1: (100 * top1) / n, top5: (100 * top5) / n, perClass };
}

export function agreement(logits: Float32Array, reference: Float32Array, classes: number): Agreement {
  const a = rows(logits, classes);
  const b = rows(reference, classes);
  let same = 0;
  let cosine = 0;
  let maxAbs = 0;
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < a.length; i++) {
    const top = argmax(a[i]);
    if (top >= 0 && top === argmax(b[i])) same++;
    let dot = 0;
    let na = 0;
    let nb = 0;
    for (let c = 0; c < classes; c++) {
      const x = a[i][c];
      const y = b[i][c];
      dot += x * y;
      na += x * x;
      nb += y * y;
      signal += y * y;
      noise += (x - y) * (x - y);
      maxAbs = Math.max(maxAbs, Math.abs(x - y));
    }
    cosine += na && nb ? dot / Math.sqrt(na * nb) : na === nb ? 1 : 0;
  }
  return {
    top1Agreement: (100 * same) / a.length,
    meanCosine: cosine / a.length,
    maxAbsError: maxAbs,
    sqnrDb: noise === 0 ? Infinity : 10 * Math.log10(signal / noise),
  };
}
