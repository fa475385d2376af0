// Something that runs a model on a batch: an onnxruntime session on a named execution provider, or
// a TF.js graph model. A runner always says which provider actually ran and on what device, so a
// report can never pass off a CPU number as a GPU number.

import * as ort from 'onnxruntime-node';
import { InputError } from '../errors.js';
import { metadataJson } from '../model/metadata.js';
import type { Tensor } from '../graph/tensor.js';
import type { BrowserReport } from './browser/chromium.js';
import { cpuName } from './device.js';
import { createSession, type ExecutionProvider } from './onnxruntime.js';
import { probeWebgpuAdapter } from './webgpu-probe.js';

export type ProviderChoice = 'auto' | ExecutionProvider;

export interface Runner {
  readonly label: string;
  readonly kind: 'onnx' | 'tfjs' | 'tflite';
  /** The provider or backend that runs it: cpu, webgpu, cuda (ONNX); tfjs-cpu, tfjs-wasm. */
  readonly provider: string;
  readonly device: string;
  readonly loadMs: number;
  /** Providers tried before this one, with why they could not run. */
  readonly fallbacks: readonly { provider: string; reason: string }[];
  /** Model metadata (labels, preprocessing) when the format has it. */
  readonly metadata: Readonly<Record<string, string>>;
  /** What the user should know: a checkpoint's conversion warnings (e.g. NaN weights), notes on the provider. */
  readonly warnings: readonly string[];
  readonly inputShape: readonly (number | string)[];
  run(input: Tensor): Promise<{ data: Float32Array; dims: readonly number[] }>;
  /**
   * One run timed where the model runs, for runtimes whose run() carries more than the run (a
   * browser page, where the batch crosses the driver): ms, from the batch already held there.
   */
  timedRun?(input: Tensor): Promise<number>;
  /** For a model in a browser: what the browser offered and said. */
  browser?(): BrowserReport;
  release(): Promise<void>;
}

const GPU_PROVIDERS: ExecutionProvider[] = ['webgpu', 'cuda'];

/** Opens an ONNX model (file bytes or a graph) on the chosen provider; 'auto' tries the GPUs first. */
export async function onnxRunner(label: string, model: Uint8Array | string, metadata: Record<string, string>, inputShape: readonly (number | string)[], choice: ProviderChoice): Promise<Runner> {
  const candidates: ExecutionProvider[] = choice === 'auto' ? autoProviders(metadata) : [choice];
  const fallbacks: { provider: string; reason: string }[] = [];
  for (const provider of candidates) {
    const adapter = provider === 'webgpu' ? probeWebgpuAdapter() : { ok: true as const };
    if (!adapter.ok) {
      fallbacks.push({ provider, reason: firstLine(adapter.reason) });
      continue;
    }
    const start = performance.now();
    try {
      // model and reference are timed in turns: idle pools must not spin on the other's cores
      const session = await createSession(model, { provider, spinning: false });
      const loadMs = performance.now() - start;
      return {
        label,
        kind: 'onnx',
        provider,
        device: provider === 'cpu' ? cpuName() : `${provider} adapter (onnxruntime ${ort.env.versions.node})`,
        loadMs,
        fallbacks,
        metadata,
        warnings: providerNotes(metadata, provider),
        inputShape,
        async run(input: Tensor) {
          let out: ort.InferenceSession.ReturnType;
          try {
            out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input.data as Float32Array, [...input.shape]) });
          } catch (e) {
            // the user's model cannot take this input (a fixed size other than the data's, …)
            throw new InputError(`onnxruntime cannot run the model on input [${input.shape.join(', ')}] (${firstLine((e as Error).message)})`, label);
          }
          const t = out[session.outputNames[0]];
          return { data: t.data as Float32Array, dims: t.dims };
        },
        release: () => session.release(),
      };
    } catch (e) {
      fallbacks.push({ provider, reason: firstLine((e as Error).message) });
    }
  }
  const why = fallbacks.map((f) => `${f.provider}: ${f.reason}`).join('; ');
  if (choice !== 'auto' && choice !== 'cpu') {
    throw new InputError(`--ep ${choice} cannot run here (${why}); this machine has no usable ${choice === 'webgpu' ? 'GPU adapter' : 'CUDA provider'}, so nothing was timed`, label);
  }
  throw new InputError(`onnxruntime cannot load the model (${why})`, label);
}

// onnxruntime's messages lead with source locations and lambdas; keep the sentence a person reads.
function firstLine(message: string): string {
  const known = message.match(/Failed to get a WebGPU adapter[^\n]*|Failed to load (shared )?library[^\n]*?(?=error:|$)|No supported adapters/);
  if (known) return known[0].trim().slice(0, 160);
  return (message.split('\n')[0] ?? '').replace(/^\S*onnxruntime_src\S*\s*/, '').slice(0, 160);
}

/**
 * The providers --ep auto tries, in order: the GPUs, then the CPU; an int8 (QDQ) model straight on
 * the CPU, since onnxruntime has no int8 kernels for WebGPU (ConvNeXt-T on an H200: 29× slower
 * than fp32 there, 0.7× fp32 on a CPU).
 */
export function autoProviders(metadata: Readonly<Record<string, string>>): ExecutionProvider[] {
  return isInt8(metadata) ? ['cpu'] : [...GPU_PROVIDERS, 'cpu'];
}

/** A model `quantize --to int8` made (QDQ), by its metadata. */
const isInt8 = (metadata: Readonly<Record<string, string>>) => metadataJson<{ mode?: string }>(metadata, 'quantization')?.mode === 'int8';

/** What someone timing this model on this provider should know. */
export function providerNotes(metadata: Readonly<Record<string, string>>, provider: string): string[] {
  if (provider === 'webgpu' && isInt8(metadata)) {
    // measured on an NVIDIA H200 (README, GPU): the QDQ layers fall back to the CPU, with copies between
    return ['int8 (QDQ) has no WebGPU kernels in onnxruntime: its quantized layers run on the CPU, with copies in between (ConvNeXt-T on an H200: 29× slower than fp32); fp16 is the format for WebGPU'];
  }
  return [];
}
