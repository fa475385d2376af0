// Key names and shapes of each real layout, written out independently of src/convnext/layouts.ts
// (from the projects' module definitions) so that the mapping is tested against a second source.

export interface KeySpec {
  version: 'v1' | 'v2';
  depths: number[];
  widths: number[];
  numClasses: number;
  convMlp?: boolean;
}

type Shapes = Map<string, number[]>;

function add(m: Shapes, key: string, shape: number[]) {
  m.set(key, shape);
}

export function officialKeys(s: KeySpec): Shapes {
  const m: Shapes = new Map();
  const [c0] = s.widths;
  add(m, 'downsample_layers.0.0.weight', [c0, 3, 4, 4]);
  add(m, 'downsample_layers.0.0.bias', [c0]);
  add(m, 'downsample_layers.0.1.weight', [c0]);
  add(m, 'downsample_layers.0.1.bias', [c0]);
  s.widths.forEach((c, st) => {
    if (st > 0) {
      const p = s.widths[st - 1];
      add(m, `downsample_layers.${st}.0.weight`, [p]);
      add(m, `downsample_layers.${st}.0.bias`, [p]);
      add(m, `downsample_layers.${st}.1.weight`, [c, p, 2, 2]);
      add(m, `downsample_layers.${st}.1.bias`, [c]);
    }
    for (let i = 0; i < s.depths[st]; i++) {
      const b = `stages.${st}.${i}`;
      add(m, `${b}.dwconv.weight`, [c, 1, 7, 7]);
      add(m, `${b}.dwconv.bias`, [c]);
      add(m, `${b}.norm.weight`, [c]);
      add(m, `${b}.norm.bias`, [c]);
      add(m, `${b}.pwconv1.weight`, [4 * c, c]);
      add(m, `${b}.pwconv1.bias`, [4 * c]);
      if (s.version === 'v2') {
        add(m, `${b}.grn.gamma`, [1, 1, 1, 4 * c]);
        add(m, `${b}.grn.beta`, [1, 1, 1, 4 * c]);
      }
      add(m, `${b}.pwconv2.weight`, [c, 4 * c]);
      add(m, `${b}.pwconv2.bias`, [c]);
      if (s.version === 'v1') add(m, `${b}.gamma`, [c]);
    }
  });
  const last = s.widths[3];
  add(m, 'norm.weight', [last]);
  add(m, 'norm.bias', [last]);
  if (s.numClasses) {
    add(m, 'head.weight', [s.numClasses, last]);
    add(m, 'head.bias', [s.numClasses]);
  }
  return m;
}

export function timmKeys(s: KeySpec): Shapes {
  const m: Shapes = new Map();
  const [c0] = s.widths;
  add(m, 'stem.0.weight', [c0, 3, 4, 4]);
  add(m, 'stem.0.bias', [c0]);
  add(m, 'stem.1.weight', [c0]);
  add(m, 'stem.1.bias', [c0]);
  s.widths.forEach((c, st) => {
    if (st > 0) {
      const p = s.widths[st - 1];
      add(m, `stages.${st}.downsample.0.weight`, [p]);
      add(m, `stages.${st}.downsample.0.bias`, [p]);
      add(m, `stages.${st}.downsample.1.weight`, [c, p, 2, 2]);
      add(m, `stages.${st}.downsample.1.bias`, [c]);
    }
    for (let i = 0; i < s.depths[st]; i++) {
      const b = `stages.${st}.blocks.${i}`;
      add(m, `${b}.conv_dw.weight`, [c, 1, 7, 7]);
      add(m, `${b}.conv_dw.bias`, [c]);
      add(m, `${b}.norm.weight`, [c]);
      add(m, `${b}.norm.bias`, [c]);
      add(m, `${b}.mlp.fc1.weight`, s.convMlp ? [4 * c, c, 1, 1] : [4 * c, c]);
      add(m, `${b}.mlp.fc1.bias`, [4 * c]);
      if (s.version === 'v2') {
        add(m, `${b}.mlp.grn.weight`, [4 * c]);
        add(m, `${b}.mlp.grn.bias`, [4 * c]);
      }
      add(m, `${b}.mlp.fc2.weight`, s.convMlp ? [c, 4 * c, 1, 1] : [c, 4 * c]);
      add(m, `${b}.mlp.fc2.bias`, [c]);
      if (s.version === 'v1') add(m, `${b}.gamma`, [c]);
    }
  });
  const last = s.widths[3];
  add(m, 'head.norm.weight', [last]);
  add(m, 'head.norm.bias', [last]);
  if (s.numClasses) {
    add(m, 'head.fc.weight', [s.numClasses, last]);
    add(m, 'head.fc.bias', [s.numClasses]);
  }
  return m;
}

export function torchvisionKeys(s: KeySpec): Shapes {
  const m: Shapes = new Map();
  const [c0] = s.widths;
  add(m, 'features.0.0.weight', [c0, 3, 4, 4]);
  add(m, 'features.0.0.bias', [c0]);
  add(m, 'features.0.1.weight', [c0]);
  add(m, 'features.0.1.bias', [c0]);
  s.widths.forEach((c, st) => {
    const f = 2 * st + 1;
    if (st > 0) {
      const p = s.widths[st - 1];
      add(m, `features.${f - 1}.0.weight`, [p]);
      add(m, `features.${f - 1}.0.bias`, [p]);
      add(m, `features.${f - 1}.1.weight`, [c, p, 2, 2]);
      add(m, `features.${f - 1}.1.bias`, [c]);
    }
    for (let i = 0; i < s.depths[st]; i++) {
      const b = `features.${f}.${i}`;
      add(m, `${b}.layer_scale`, [c, 1, 1]);
      add(m, `${b}.block.0.weight`, [c, 1, 7, 7]);
      add(m, `${b}.block.0.bias`, [c]);
      add(m, `${b}.block.2.weight`, [c]);
      add(m, `${b}.block.2.bias`, [c]);
      add(m, `${b}.block.3.weight`, [4 * c, c]);
      add(m, `${b}.block.3.bias`, [4 * c]);
      add(m, `${b}.block.5.weight`, [c, 4 * c]);
      add(m, `${b}.block.5.bias`, [c]);
    }
  });
  const last = s.widths[3];
  add(m, 'classifier.0.weight', [last]);
  add(m, 'classifier.0.bias', [last]);
  add(m, 'classifier.2.weight', [s.numClasses, last]);
  add(m, 'classifier.2.bias', [s.numClasses]);
  return m;
}

export function hfKeys(s: KeySpec): Shapes {
  const m: Shapes = new Map();
  const root = s.version === 'v2' ? 'convnextv2' : 'convnext';
  const [c0] = s.widths;
  add(m, `${root}.embeddings.patch_embeddings.weight`, [c0, 3, 4, 4]);
  add(m, `${root}.embeddings.patch_embeddings.bias`, [c0]);
  add(m, `${root}.embeddings.layernorm.weight`, [c0]);
  add(m, `${root}.embeddings.layernorm.bias`, [c0]);
  s.widths.forEach((c, st) => {
    const stage = `${root}.encoder.stages.${st}`;
    if (st > 0) {
      const p = s.widths[st - 1];
      add(m, `${stage}.downsampling_layer.0.weight`, [p]);
      add(m, `${stage}.downsampling_layer.0.bias`, [p]);
      add(m, `${stage}.downsampling_layer.1.weight`, [c, p, 2, 2]);
      add(m, `${stage}.downsampling_layer.1.bias`, [c]);
    }
    for (let i = 0; i < s.depths[st]; i++) {
      const b = `${stage}.layers.${i}`;
      add(m, `${b}.dwconv.weight`, [c, 1, 7, 7]);
      add(m, `${b}.dwconv.bias`, [c]);
      add(m, `${b}.layernorm.weight`, [c]);
      add(m, `${b}.layernorm.bias`, [c]);
      add(m, `${b}.pwconv1.weight`, [4 * c, c]);
      add(m, `${b}.pwconv1.bias`, [4 * c]);
      if (s.version === 'v2') {
        add(m, `${b}.grn.weight`, [1, 1, 1, 4 * c]);
        add(m, `${b}.grn.bias`, [1, 1, 1, 4 * c]);
      }
      add(m, `${b}.pwconv2.weight`, [c, 4 * c]);
      add(m, `${b}.pwconv2.bias`, [c]);
      if (s.version === 'v1') add(m, `${b}.layer_scale_parameter`, [c]);
    }
  });
  const last = s.widths[3];
  add(m, `${root}.layernorm.weight`, [last]);
  add(m, `${root}.layernorm.bias`, [last]);
  if (s.numClasses) {
    add(m, 'classifier.weight', [s.numClasses, last]);
    add(m, 'classifier.bias', [s.numClasses]);
  }
  return m;
}
