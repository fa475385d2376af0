// Functions that run inside the browser page, handed to it by the driver as source text: each is
// self-contained (nothing from this module's scope, no imports) and takes and returns plain JSON.
// Tensors cross as base64 of their float32 bytes. Models live in the page between calls, by id.

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface PageEnvironment {
  readonly userAgent: string;
  readonly crossOriginIsolated: boolean;
  readonly hardwareConcurrency: number;
  /** The WebGPU adapter, or why there is none. */
  readonly webgpu: { readonly vendor: string; readonly architecture: string; readonly description: string; readonly features: readonly string[] } | { readonly error: string };
  /** The WebGL 2 renderer, or undefined without WebGL 2. */
  readonly webgl?: string;
}

export async function probeEnvironment(): Promise<PageEnvironment> {
  let webgpu: PageEnvironment['webgpu'];
  const gpu = (navigator as any).gpu;
  if (!gpu) webgpu = { error: 'the browser offers no WebGPU (navigator.gpu is missing)' };
  else {
    try {
      const adapter = await gpu.requestAdapter();
      webgpu = adapter
        ? { vendor: adapter.info?.vendor ?? '', architecture: adapter.info?.architecture ?? '', description: adapter.info?.description ?? '', features: [...adapter.features].map(String).sort() }
        : { error: 'the browser has WebGPU but no adapter (requestAdapter gave null)' };
    } catch (e) {
      webgpu = { error: `requestAdapter failed: ${String(e)}` };
    }
  }
  let webgl: string | undefined;
  const gl = document.createElement('canvas').getContext('webgl2');
  if (gl) {
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    webgl = String(info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
  }
  return { userAgent: navigator.userAgent, crossOriginIsolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, webgpu, webgl };
}

export interface OpenedInPage {
  readonly loadMs: number;
  /** onnxruntime-web's wasm threads, or TF.js's backend name as it reports it. */
  readonly detail: string;
}

/** Loads onnxruntime-web (the module at `ortUrl`) and an ONNX model from `modelUrl` on `ep`. */
export async function openOnnxInPage(a: { id: string; ortUrl: string; ortDir: string; modelUrl: string; ep: string; externalData: { path: string; url: string }[] }): Promise<OpenedInPage> {
  const g = globalThis as any;
  g.__models ??= new Map();
  g.__ort ??= await import(a.ortUrl);
  const ort = g.__ort;
  ort.env.wasm.wasmPaths = a.ortDir;
  ort.env.logLevel = 'error';
  const start = performance.now();
  const session = await ort.InferenceSession.create(a.modelUrl, {
    executionProviders: [a.ep],
    ...(a.externalData.length ? { externalData: a.externalData.map((x) => ({ path: x.path, data: x.url })) } : {}),
  });
  const loadMs = performance.now() - start;
  g.__models.set(a.id, {
    async run(data: Float32Array, dims: number[]) {
      const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, dims) });
      const t = out[session.outputNames[0]];
      // on WebGPU an output may stay on the GPU until read
      const values = t.location && t.location !== 'cpu' ? await t.getData() : t.data;
      return { data: values as Float32Array, dims: [...t.dims] as number[] };
    },
    release: () => session.release(),
  });
  return { loadMs, detail: `${ort.env.wasm.numThreads ?? 'default'} wasm threads` };
}

/** Loads TF.js (its UMD bundles, in order) and a graph model from `modelUrl` on `backend`. */
export async function openTfjsInPage(a: { id: string; scripts: string[]; wasmDir: string; modelUrl: string; backend: string }): Promise<OpenedInPage> {
  const g = globalThis as any;
  g.__models ??= new Map();
  for (const src of a.scripts) {
    if (document.querySelector(`script[src="${src}"]`)) continue;
    await new Promise<void>((resolve, reject) => {
      const s = document.createElement('script');
      s.src = src;
      s.onload = () => resolve();
      s.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.appendChild(s);
    });
  }
  const tf = g.tf;
  tf.env().set('IS_TEST', true);
  if (a.backend === 'wasm') tf.wasm.setWasmPaths(a.wasmDir);
  if (!(await tf.setBackend(a.backend))) throw new Error(`TF.js could not start its ${a.backend} backend here`);
  await tf.ready();
  const start = performance.now();
  const model = await tf.loadGraphModel(a.modelUrl);
  const loadMs = performance.now() - start;
  g.__models.set(a.id, {
    async run(data: Float32Array, dims: number[]) {
      const y = tf.tidy(() => {
        const x = tf.tensor(data, dims);
        const out = model.predict(dims.length === 4 ? tf.transpose(x, [0, 2, 3, 1]) : x);
        if (!(out instanceof tf.Tensor)) throw new Error('the model has more than one output; validate runs models with one');
        return (out as any).rank === 4 ? tf.transpose(out, [0, 3, 1, 2]) : out;
      });
      const values = await y.data();
      const shape = [...y.shape];
      y.dispose();
      return { data: values as Float32Array, dims: shape as number[] };
    },
    release: async () => model.dispose(),
  });
  return { loadMs, detail: `TF.js ${tf.version_core} on ${tf.getBackend()}` };
}

/** Runs model `id` on a batch; returns its first output. */
export async function runInPage(a: { id: string; input: string; dims: number[] }): Promise<{ output: string; dims: number[] }> {
  const fromBase64 = (s: string) => {
    const bytes = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  };
  const toBase64 = (f: Float32Array) => {
    const bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const model = (globalThis as any).__models.get(a.id);
  const out = await model.run(fromBase64(a.input), a.dims);
  return { output: toBase64(Float32Array.from(out.data)), dims: out.dims };
}

/** Keeps a batch in the page for timed runs, so that the times leave out the driver's transfers. */
export function holdInputInPage(a: { input: string; dims: number[] }): void {
  const bytes = Uint8Array.from(atob(a.input), (c) => c.charCodeAt(0));
  (globalThis as any).__held = { data: new Float32Array(bytes.buffer), dims: a.dims };
}

/** One run of model `id` on the held batch, timed in the page (output read back included). */
export async function timeInPage(id: string): Promise<number> {
  const g = globalThis as any;
  const start = performance.now();
  await g.__models.get(id).run(g.__held.data, g.__held.dims);
  return performance.now() - start;
}

export async function releaseInPage(id: string): Promise<void> {
  const g = globalThis as any;
  await g.__models.get(id)?.release();
  g.__models.delete(id);
}
