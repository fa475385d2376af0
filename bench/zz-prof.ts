import { benchProfile } from './profile.js';
await benchProfile({ ours: 'bench/out/convnext_tiny.onnx', torch: 'bench/out/convnext_tiny.torch.onnx' }, Number(process.env.RUNS ?? 10));
