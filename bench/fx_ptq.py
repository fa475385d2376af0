"""The int8 accuracy baseline to beat: PyTorch FX graph-mode post-training static quantization of the
Fashion-MNIST ConvNeXt fixture, measured over the whole 10,000-image test split.

    /usr/bin/python3 bench/fx_ptq.py FIXTURE_DIR OUT_DIR [--data-only]

Also writes the preprocessed inputs the Node side evaluates our int8 models on (each only when
missing, so the 123 MB file is made once):

    OUT_DIR/fashion_test.npy     [10000, 3, 32, 32] float32, the test split
    OUT_DIR/fashion_labels.npy   [10000] uint8, its labels
    OUT_DIR/fashion_calib.npy    [300, 3, 32, 32] float32, FIXTURE_DIR/calib/ in labels.txt order

Preprocessing (fixtures/make_fashion.py's, the one the model was trained with): 28x28 uint8 grey ->
R=G=B -> F.interpolate bilinear to 32x32 (align_corners=False, no antialias, no rounding) -> /255
-> ImageNet mean/std. The test images are read straight from the idx .gz, the calibration images
from the fixture's PNGs. With --data-only nothing is quantized.

FX quantization: torch.ao.quantization.quantize_fx prepare_fx / convert_fx with
get_default_qconfig_mapping('fbgemm') (per-channel symmetric int8 weights, 7-bit (reduce_range)
uint8 activations, histogram observers), calibrated on the same calibration images. Debian's torch
1.13 is built without the fbgemm kernels, so the converted model runs on the 'onednn' engine (also
x86, and it accepts fbgemm's qconfig; the reduced activation range only narrows what is stored).
Prints one JSON line on stdout; progress on stderr.
"""

import argparse
import copy
import gzip
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

TEST_IMAGES = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz'
TEST_LABELS = '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz'
BATCH = 100


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], 'big')
    if magic >> 8 != 0x08:
        raise ValueError(f'{path}: not an unsigned-byte idx file')
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def preprocess(grey_u8, meta):
    """uint8 [N, 28, 28] -> float32 [N, 3, S, S], normalised (make_fashion.py's preprocessing)."""
    size = int(meta['image_size'])
    x = torch.from_numpy(np.ascontiguousarray(grey_u8)).to(torch.float32)[:, None].expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False) / 255.0
    mean = torch.tensor(meta['mean'], dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(meta['std'], dtype=torch.float32).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def read_folder(folder):
    """The PNGs named in folder/labels.txt, in its order: uint8 [N, 28, 28] and labels."""
    names, labels = [], []
    with open(os.path.join(folder, 'labels.txt')) as f:
        for line in f:
            if line.strip():
                name, label = line.split()
                names.append(name)
                labels.append(int(label))
    images = []
    for n in names:
        with Image.open(os.path.join(folder, n)) as im:
            images.append(np.asarray(im.convert('L')))
    return np.stack(images), np.array(labels)


def build_model(meta, state):
    arch = meta.get('architecture', {})
    widths = arch.get('widths', [16, 32, 64, 128])
    depths = arch.get('depths', [2, 2, 4, 1])
    cfg = [CNBlockConfig(widths[i], widths[i + 1] if i < 3 else None, depths[i]) for i in range(4)]
    model = ConvNeXt(cfg, stochastic_depth_prob=0.0, layer_scale=arch.get('layer_scale_init', 1e-6),
                     num_classes=int(meta.get('num_classes', 10)))
    model.load_state_dict(state, strict=True)
    return model.eval()


@torch.no_grad()
def logits_of(model, x):
    return torch.cat([model(x[i:i + BATCH]) for i in range(0, len(x), BATCH)]).numpy().astype(np.float32)


def save_once(path, array):
    if os.path.exists(path):
        old = np.load(path, mmap_mode='r')
        if old.shape == array.shape and old.dtype == array.dtype and np.array_equal(old, array):
            return False
    tmp = path + '.tmp.npy'
    np.save(tmp, array)
    os.replace(tmp, path)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('fixture')
    ap.add_argument('out')
    ap.add_argument('--data-only', action='store_true', help='write the .npy inputs and stop')
    ap.add_argument('--threads', type=int, default=0, help='torch threads (default: torch\'s own choice)')
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with open(os.path.join(args.fixture, 'meta.json')) as f:
        meta = json.load(f)
    os.makedirs(args.out, exist_ok=True)

    t0 = time.perf_counter()
    test_u8 = read_idx(TEST_IMAGES)
    test_labels = read_idx(TEST_LABELS)
    test_x = preprocess(test_u8, meta)
    calib_u8, _ = read_folder(os.path.join(args.fixture, 'calib'))
    calib_x = preprocess(calib_u8, meta)
    written = {
        'fashion_test.npy': save_once(os.path.join(args.out, 'fashion_test.npy'), test_x.numpy()),
        'fashion_labels.npy': save_once(os.path.join(args.out, 'fashion_labels.npy'), test_labels.astype(np.uint8)),
        'fashion_calib.npy': save_once(os.path.join(args.out, 'fashion_calib.npy'), calib_x.numpy()),
    }
    result = {'test_images': int(len(test_x)), 'calib_images': int(len(calib_x)), 'written': written,
              'data_s': round(time.perf_counter() - t0, 2)}
    if args.data_only:
        print(json.dumps(result))
        return

    state = torch.load(os.path.join(args.fixture, 'convnext_fashion.pth'), map_location='cpu')
    model = build_model(meta, state)

    log('fp32 over the test split ...')
    t = time.perf_counter()
    fp32 = logits_of(model, test_x)
    result['fp32_eval_s'] = round(time.perf_counter() - t, 2)
    fp32_pred = fp32.argmax(1)
    result['fp32_top1'] = 100.0 * float((fp32_pred == test_labels).mean())
    ref_path = os.path.join(args.fixture, 'test_logits_fp32.npy')
    if os.path.exists(ref_path):
        ref = np.load(ref_path)
        result['fp32_vs_fixture_max_abs'] = float(np.abs(ref - fp32).max())
        result['fp32_vs_fixture_argmax_same'] = int((ref.argmax(1) == fp32_pred).sum())

    # torch 1.13 warns about reduce_range (fbgemm's qconfig uses it) and about the PlaceholderObserver
    # of the ops it leaves float; neither changes the result
    warnings.filterwarnings('ignore', message='Please use quant_min and quant_max')
    warnings.filterwarnings('ignore', message='Unsupported activation_post_process')
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    engines = torch.backends.quantized.supported_engines
    engine = 'fbgemm' if 'fbgemm' in engines else 'onednn' if 'onednn' in engines else 'x86'
    torch.backends.quantized.engine = engine
    result.update({'qconfig': 'fbgemm', 'engine': engine, 'supported_engines': engines, 'torch': torch.__version__})

    log(f'FX PTQ: prepare_fx, calibrate on {len(calib_x)} images, convert_fx (engine {engine}) ...')
    t = time.perf_counter()
    prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping('fbgemm'), example_inputs=(calib_x[:1],))
    with torch.no_grad():
        for i in range(0, len(calib_x), 32):
            prepared(calib_x[i:i + 32])
    quantized = convert_fx(prepared)
    result['fx_quantize_s'] = round(time.perf_counter() - t, 2)
    kinds = {}
    for m in quantized.modules():
        name = type(m).__module__ + '.' + type(m).__name__
        if '.quantized' in name:
            kinds[type(m).__name__] = kinds.get(type(m).__name__, 0) + 1
    result['fx_quantized_modules'] = kinds

    log('FX int8 over the test split ...')
    t = time.perf_counter()
    q = logits_of(quantized, test_x)
    result['fx_eval_s'] = round(time.perf_counter() - t, 2)
    q_pred = q.argmax(1)
    result['fx_top1'] = 100.0 * float((q_pred == test_labels).mean())
    result['fx_agreement'] = 100.0 * float((q_pred == fp32_pred).mean())
    result['fx_drop'] = result['fp32_top1'] - result['fx_top1']
    np.save(os.path.join(args.out, 'fashion_fx_logits.npy'), q)
    print(json.dumps(result))


if __name__ == '__main__':
    main()
