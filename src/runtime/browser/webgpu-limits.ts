// What onnxruntime-web 1.30's WebGPU provider (JSEP, the one `import 'onnxruntime-web'` gives)
// cannot run right, found from the graph before it runs: a model that would give a wrong answer
// there is refused with the reason, never measured as an accuracy failure nor passed.

import type { Graph } from '../../graph/graph.js';
import { numel } from '../../graph/tensor.js';

/** Why the graph cannot run right on this WebGPU adapter, or undefined when it can. */
export function webgpuCannotRun(graph: Graph, adapterFeatures: readonly string[]): string | undefined {
  const half = [...graph.initializers.values()].some((t) => t.dtype === 'float16') || graph.inputs.some((i) => i.dtype === 'float16');
  if (half && !adapterFeatures.includes('shader-f16')) {
    return "the model computes in float16 and this WebGPU adapter lacks the 'shader-f16' feature (cannot run here; the fp32 or int8 --target webgpu model can)";
  }
  for (const node of graph.nodes) {
    if (node.op !== 'DequantizeLinear' || graph.initializers.has(node.inputs[0])) continue;
    // a DequantizeLinear of a value computed at run time: JSEP's kernel reads a per-tensor 8-bit
    // input of size 4k as word i/4 for the vec4 i, and subtracts uint8 zero points in u32
    const scale = graph.initializers.get(node.inputs[1]);
    const zero = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined;
    const perTensor = !scale || numel(scale.shape) <= 1;
    const unsigned = !zero || zero.dtype === 'uint8'; // no zero point: QuantizeLinear's default, uint8
    if (perTensor || unsigned) {
      return `onnxruntime-web's WebGPU provider computes the ${unsigned ? 'uint8' : 'per-tensor'} DequantizeLinear ${node.name} wrongly (an int8 model in the CPU form); make the WebGPU form with quantize --to int8 --target webgpu`;
    }
  }
  return undefined;
}
