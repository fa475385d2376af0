// Our own answer for one image, as validate computes it: onnxruntime-node on the CPU, our
// preprocessing from the model's metadata, softmax; what a browser page is checked against.
import { loadOnnxModel } from '../../src/convnext/import-onnx.js';
import { loadImage } from '../../src/data/images.js';
import { float32 } from '../../src/graph/tensor.js';
import { preprocessingOf } from '../../src/model/metadata.js';
import { onnxRunner } from '../../src/runtime/runners.js';

export type Top = { label: string; score: number }[];

/** The top-5 labels and softmax scores of `model` on each image, in Node. */
export async function nodeTop5(model: string, images: readonly string[], labels: readonly string[]): Promise<Top[]> {
  const graph = loadOnnxModel(model);
  const p = preprocessingOf(graph, {});
  const runner = await onnxRunner(model, model, {}, graph.inputs[0].shape, 'cpu');
  try {
    const out: Top[] = [];
    for (const image of images) {
      const logits = [...(await runner.run(float32([1, 3, p.crop, p.crop], await loadImage(image, p)))).data];
      const max = Math.max(...logits);
      const e = logits.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, b) => a + b, 0);
      out.push(e.map((v, c) => ({ label: labels[c], score: v / sum })).sort((a, b) => b.score - a.score).slice(0, 5));
    }
    return out;
  } finally {
    await runner.release();
  }
}
