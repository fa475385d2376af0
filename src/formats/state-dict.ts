// A checkpoint's weights as the readers hand them over: tensor name → tensor. A Map keeps the
// insertion order (the order the file listed them), which error messages and reports rely on, and
// unlike a plain object it cannot be confused by a key such as "__proto__".

import type { Tensor } from '../graph/tensor.js';

export type StateDict = Map<string, Tensor>;
