"""DeblurGAN-v2's training augmentation (VITA-Group/DeblurGANv2 aug.py and config/config.yaml as
released), in TensorFlow, stateless in a seed (config.data.augment = 'deblurganv2').

Geometric, on the blurred / sharp pair (aug.py get_transforms scope 'geometric': albumentations
OneOf, p 0.5, of five transforms with equal weight), then a random crop (RandomCrop):
- HorizontalFlip; Transpose (rows <-> columns);
- ShiftScaleRotate (albumentations defaults: shift +-0.0625 of the side, scale 1 +- 0.1, rotation
  +-45 degrees about the centre, bilinear);
- OpticalDistortion (distort_limit 0.05: radial k in [-0.05, 0.05], camera fx = fy = width, centre
  shift round(U(-0.05, 0.05)) = 0 pixels: cv2.initUndistortRectifyMap with coefficients (k, k));
- ElasticTransform (alpha 1, sigma 50, alpha_affine 50): its random affine part (three points
  moved by up to 50 pixels); its elastic field (alpha 1 on a sigma-50 Gaussian-smoothed noise, a
  fraction of a pixel) is left out.
Corruption, on the blurred input only (aug.py get_corrupt_function: OneOf, p 0.5, of the config's
eight, equal weight; the chosen one always applies): cutout (3 holes of up to 25 x 25), JPEG quality 70-90, motion
blur (a random line kernel of side 3-7), median blur (3, 5 or 7), gamma 0.8-1.2, RGB shift
+-20 / 255 per channel, HSV shift (hue +-20 of 180, saturation +-30 / 255, value +-20 / 255) and
sharpen (imgaug Sharpen: alpha 0.2-0.5, lightness 0.5-1).
The geometric transforms sample the source image only at the crop's pixels (the same values as
warping the whole frame then cropping); borders reflect without repeating the edge pixel, as
albumentations' default border_mode of these three transforms, cv2.BORDER_REFLECT_101, does.
Median blur repeats the edge pixels beyond the border, as cv2.medianBlur does (BORDER_REPLICATE).
"""

from __future__ import annotations

import math

from jaxgan.data.tf_cpu import tf

GEOMETRIC = ("hflip", "transpose", "shift_scale_rotate", "optical_distortion", "elastic_affine")
CORRUPTIONS = ("cutout", "jpeg", "motion_blur", "median_blur", "gamma", "rgb_shift", "hsv_shift", "sharpen")


def _u(seed, low=0.0, high=1.0, shape=()):
    return tf.random.stateless_uniform(shape, seed, low, high)


def _reflect(coord, size):
    """Reflects float pixel coordinates into [0, size - 1] about the first and last pixel centres,
    the edge not repeated (cv2.BORDER_REFLECT_101: ...2 1 | 0 1 2 ... n-2 n-1 | n-2 ...). Reflecting
    the coordinate gives each bilinear tap the pixel that cv2 reflects its index to, with its weight."""
    last = tf.cast(size, tf.float32) - 1.0
    period = tf.maximum(2.0 * last, 1.0)
    # floormod is the identity on [0, period), where most windows' coordinates lie: skipped there
    c = tf.cond(tf.reduce_all((coord >= 0.0) & (coord < period)), lambda: coord,
                lambda: tf.math.floormod(coord, period))
    c = tf.where(c > last, period - c, c)
    return tf.clip_by_value(c, 0.0, last)


def bilinear_taps(x, y, height, width, channels):
    """What remap needs of the source coordinates x (columns), y (rows), each (h, w), for a
    height x width source with `channels` channels: the flat pixel index (row * width + column) of
    each of the four neighbours (top-left, top-right, bottom-left, bottom-right; borders reflected)
    and the weights (wx, 1 - wx, wy, 1 - wy), each (h, w, channels) (a product of same-shape
    tensors costs TensorFlow less than a broadcast one). Shared by images sampled at the same points."""
    x, y = _reflect(x, width), _reflect(y, height)
    x0, y0 = tf.floor(x), tf.floor(y)
    wx, wy = x - x0, y - y0
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)
    row0, row1 = y0 * width, y1 * width
    shape = tf.concat([tf.shape(x), [channels]], 0)
    weights = tuple(tf.broadcast_to(wt[..., None], shape) for wt in (wx, 1 - wx, wy, 1 - wy))
    return (row0 + x0, row0 + x1, row1 + x0, row1 + x1), weights


def sample(image, taps):
    """remap of image (H, W, C) at the points of bilinear_taps."""
    (i00, i01, i10, i11), (wx, wx_, wy, wy_) = taps
    pixels = tf.reshape(image, [-1, tf.shape(image)[2]])

    def at(index):
        return tf.image.convert_image_dtype(tf.gather(pixels, index), tf.float32)

    top = at(i00) * wx_ + at(i01) * wx
    bottom = at(i10) * wx_ + at(i11) * wx
    return top * wy_ + bottom * wy


def remap(image, x, y):
    """Bilinear samples of image (H, W, C) at float source coordinates x (columns), y (rows), each
    (h, w); reflected at the borders. Returns float32 (h, w, C); a uint8 image is read as [0, 1]
    (convert_image_dtype of the gathered pixels only: the values of converting the whole image)."""
    shape = tf.shape(image)
    return sample(image, bilinear_taps(x, y, shape[0], shape[1], shape[2]))


def _affine(u, v, matrix):
    """Source coordinates of output pixels (u, v) under the inverse affine map `matrix` (2, 3)."""
    return (matrix[0, 0] * u + matrix[0, 1] * v + matrix[0, 2],
            matrix[1, 0] * u + matrix[1, 1] * v + matrix[1, 2])


def _shift_scale_rotate(u, v, height, width, seeds):
    """albumentations ShiftScaleRotate (defaults): rotate by a, scale by s about the centre, shift."""
    angle = _u(seeds[0], -45.0, 45.0) * math.pi / 180.0
    scale = _u(seeds[1], 0.9, 1.1)
    dx, dy = _u(seeds[2], -0.0625, 0.0625) * width, _u(seeds[3], -0.0625, 0.0625) * height
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    # output = R(angle) * scale * (source - c) + c + shift  =>  source = R(-angle) (output - c - shift) / scale + c
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    uu, vv = u - cx - dx, v - cy - dy
    return cos * uu + sin * vv + cx, -sin * uu + cos * vv + cy


def _optical_distortion(u, v, height, width, seeds):
    """cv2.initUndistortRectifyMap with fx = fy = width, centre (w / 2, h / 2), coefficients (k, k)."""
    k = _u(seeds[0], -0.05, 0.05)
    f = width
    cx, cy = width * 0.5, height * 0.5
    x, y = (u - cx) / f, (v - cy) / f
    r2 = x * x + y * y
    radial = 1.0 + k * r2 + k * r2 * r2
    return x * radial * f + cx, y * radial * f + cy


def _elastic_affine(u, v, height, width, seeds):
    """ElasticTransform's affine part: the affine map taking three points of a centred square to
    the same points moved by U(-50, 50) pixels each (applied as output -> source: its inverse)."""
    size = tf.minimum(height, width) / 3.0
    cx, cy = width / 2.0, height / 2.0
    src = tf.stack([[cx + size, cy + size], [cx + size, cy - size], [cx - size, cy - size]])
    dst = src + _u(seeds[0], -50.0, 50.0, (3, 2))
    # the map from output (dst) points back to source (src) points: solve [dst 1] M^T = src
    a = tf.concat([dst, tf.ones((3, 1))], 1)
    m = tf.transpose(tf.linalg.solve(a, src))  # (2, 3)
    return _affine(u, v, m)


def _draw(height, width, crop: int, seed):
    """(choice, top, left, seeds of the transform's parameters) of window_coordinates."""
    seeds = tf.random.experimental.stateless_split(seed, 8)
    apply = _u(seeds[0]) < 0.5
    choice = tf.random.stateless_uniform([], seeds[1], 0, len(GEOMETRIC), dtype=tf.int32)
    choice = tf.where(apply, choice, -1)
    transpose = tf.equal(choice, 1)
    out_h, out_w = tf.where(transpose, width, height), tf.where(transpose, height, width)
    top = tf.floor(_u(seeds[2]) * (out_h - crop + 1))
    left = tf.floor(_u(seeds[3]) * (out_w - crop + 1))
    return choice, top, left, seeds[4:]


def window_coordinates(height, width, crop: int, seed):
    """(choice, x, y) of geometric_window: the transform drawn (-1 none, else its GEOMETRIC index) and
    the source columns x and rows y (crop, crop) its window samples, for a height x width source."""
    choice, top, left, params = _draw(height, width, crop, seed)
    return choice, *_coordinates(choice, top, left, height, width, crop, params)


def _coordinates(choice, top, left, height, width, crop: int, params):
    grid = tf.range(crop, dtype=tf.float32)
    v, u = tf.meshgrid(grid + top, grid + left, indexing="ij")  # output rows, columns
    branches = [
        lambda: (u, v),  # none
        lambda: (width - 1.0 - u, v),  # hflip
        lambda: (v, u),  # transpose
        lambda: _shift_scale_rotate(u, v, height, width, params),
        lambda: _optical_distortion(u, v, height, width, params),
        lambda: _elastic_affine(u, v, height, width, params),
    ]
    return tf.switch_case(choice + 1, branches)


def geometric_window(image, target, crop: int, seed):
    """One of the geometric transforms (or, with probability 1/2, none) of the pair, and a random
    crop x crop window of the result, sampled from the source at the window's pixels only.
    image, target (H, W, C), float in [0, 1] or uint8; returns the two float32 crops."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    height, width = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    choice, top, left, params = _draw(height, width, crop, seed)

    def whole_pixels():  # none / hflip / transpose sample whole pixels inside the frame, where
        # remap's bilinear weights are 0: the window is a slice of the frame (flipped / transposed)
        t, l = tf.cast(top, tf.int32), tf.cast(left, tf.int32)

        def window(x):
            return tf.switch_case(choice + 1, [
                lambda: x[t:t + crop, l:l + crop],
                lambda: tf.reverse(x[t:t + crop, w - crop - l:w - l], [1]),
                lambda: tf.transpose(x[l:l + crop, t:t + crop], [1, 0, 2]),  # out[i, j] = x[l + j, t + i]
            ])

        return (tf.image.convert_image_dtype(window(image), tf.float32),
                tf.image.convert_image_dtype(window(target), tf.float32))

    def bilinear():  # the two frames sampled at the same points
        x, y = _coordinates(choice, top, left, height, width, crop, params)
        taps = bilinear_taps(x, y, h, w, tf.shape(image)[2])
        return sample(image, taps), sample(target, taps)

    return tf.cond(choice <= 1, whole_pixels, bilinear)


def _depthwise(image, kernel):
    """image (h, w, C) convolved with one 2-D kernel (k, k) per channel, reflect padding."""
    k = kernel.shape[0] if kernel.shape[0] is not None else tf.shape(kernel)[0]
    pad = k // 2
    padded = tf.pad(image[None], [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    channels = image.shape[-1]
    filt = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(padded, filt, [1, 1, 1, 1], "VALID")[0]


def _motion_kernel(seeds):
    """A line kernel of odd side k in {3, 5, 7} between two random points, normalised (MotionBlur)."""
    size = 7
    k = 2 * tf.random.stateless_uniform([], seeds[0], 1, 4, dtype=tf.int32) + 1
    ends = tf.random.stateless_uniform([4], seeds[1], 0, 1) * tf.cast(k - 1, tf.float32)
    t = tf.linspace(0.0, 1.0, 4 * size)
    xs = tf.round(ends[0] + (ends[2] - ends[0]) * t) + tf.cast((size - k) // 2, tf.float32)
    ys = tf.round(ends[1] + (ends[3] - ends[1]) * t) + tf.cast((size - k) // 2, tf.float32)
    index = tf.cast(tf.stack([ys, xs], -1), tf.int32)
    kernel = tf.minimum(tf.scatter_nd(index, tf.ones_like(xs), [size, size]), 1.0)
    return kernel / tf.reduce_sum(kernel)


def _sorting_network(n: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sort on n wires: comparators (i, j), i < j, leaving the smaller value
    on wire i (n padded to a power of two with wires of +inf, whose comparators are dropped)."""
    size = 1 << max(0, (n - 1).bit_length())
    pairs, p = [], 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def _merge(a: list, b: list, pairs: list) -> list:
    """Batcher's odd-even merge of the sorted wire lists a and b (each padded to a power of two with
    +inf, whose comparators are dropped or become a relabelling): appends its comparators to
    `pairs`, returns the merged wire list, smallest first."""
    size = 1 << max(0, (max(len(a), len(b)) - 1).bit_length())
    slots = list(a) + [None] * (size - len(a)) + list(b) + [None] * (size - len(b))

    def merge(index):
        if len(index) == 2:
            steps.append((index[0], index[1]))
            return
        merge(index[0::2])
        merge(index[1::2])
        steps.extend((index[i], index[i + 1]) for i in range(1, len(index) - 1, 2))

    steps: list = []
    merge(list(range(2 * size)))
    for p, q in steps:
        if slots[q] is None:  # min(x, inf) = x stays put
            continue
        if slots[p] is None:  # the value moves to p, +inf to q
            slots[p], slots[q] = slots[q], None
            continue
        pairs.append((slots[p], slots[q]))
    return [w for w in slots if w is not None]


def _pruned(pairs, outputs):
    """The comparators of `pairs` that reach `outputs`, as (i, j, keep min, keep max)."""
    needed, program = set(outputs), []
    for a, b in reversed(pairs):
        if a in needed or b in needed:
            program.append((a, b, a in needed, b in needed))
            needed |= {a, b}
    return program[::-1]


def median_network(k: int):
    """Comparators for the medians of two neighbouring k x k windows (columns 0..k-1 and 1..k of
    k + 1 sorted columns), which share the k - 1 columns between them (the core).
    Returns (core program, core outputs, final program, final output):
    - core: wires rank * (k - 1) + c for rank `rank` of core column c (window column c + 1),
      merged pairwise up a tree (Batcher's odd-even merge) and pruned to the sorted ranks
      R - k .. R of the core (R = (k * k - 1) / 2), listed smallest first;
    - final: wires 0..k those k + 1 core values, k + 1..2k the window's own column, sorted; its
      output is the median of the window: the R - k core values below them are below it and the
      ones above R above it, so it is the middle (k-th) of these 2k + 1."""
    rank = (k * k - 1) // 2
    pairs: list = []
    lists = [[r * (k - 1) + c for r in range(k)] for c in range(k - 1)]
    while len(lists) > 1:
        lists = [_merge(lists[i], lists[i + 1], pairs) for i in range(0, len(lists) - 1, 2)] + \
            ([lists[-1]] if len(lists) % 2 else [])
    core = lists[0][rank - k:rank + 1]
    final: list = []
    middle = _merge(list(range(k + 1)), list(range(k + 1, 2 * k + 1)), final)[k]
    return _pruned(pairs, core), core, _pruned(final, [middle]), middle


def _compare(wires, program):
    """Runs comparators (i, j, keep min, keep max) on a dict of tensors, in place."""
    for a, b, keep_min, keep_max in program:
        x, y = wires[a], wires[b]
        if keep_min:
            wires[a] = tf.minimum(x, y)
        if keep_max:
            wires[b] = tf.maximum(x, y)


def _median(image, k):
    """Median filter with a k x k window (k odd), the edge pixels repeated beyond the border (as
    cv2.medianBlur, which albumentations' MedianBlur calls: BORDER_REPLICATE), by min / max alone:
    they only move values, so the result is the value a sort of each window puts in its middle. Output
    columns come in pairs (2m, 2m + 1) that share k - 1 window columns (median_network); the padded
    columns are split into even and odd ones so that every pair's column a is a plain slice, and
    each window column is sorted once."""
    pad = k // 2
    h, w, c = tf.shape(image)[0], tf.shape(image)[1], tf.shape(image)[2]
    pairs = (w + 1) // 2
    rows = tf.clip_by_value(tf.range(-pad, h + pad), 0, h - 1)  # replicate: edge indices repeated
    cols = tf.clip_by_value(tf.range(-pad, w + pad), 0, w - 1)
    padded = tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)
    padded = tf.concat([padded, padded[:, -1:]], 1)  # an odd width's last pair: a column to drop
    sorted_columns = []
    for half in (padded[:, 0::2], padded[:, 1::2]):  # columns 2m, 2m + 1
        ranks = {r: half[r:r + h] for r in range(k)}
        _compare(ranks, [(a, b, True, True) for a, b in _sorting_network(k)])
        sorted_columns.append(ranks)

    def column(a, r):  # rank r of window column a of every pair: padded column 2m + a
        return sorted_columns[a % 2][r][:, a // 2:a // 2 + pairs]

    core_program, core, final_program, middle = median_network(k)
    used = {wire for i, j, _, _ in core_program for wire in (i, j)} | set(core)
    wires = {wire: column(wire % (k - 1) + 1, wire // (k - 1)) for wire in used}
    _compare(wires, core_program)
    medians = []
    for a in (0, k):  # the pair's left window adds column 0, its right window column k
        window = {i: wires[wire] for i, wire in enumerate(core)}
        used = {wire for i, j, _, _ in final_program for wire in (i, j)} - set(window)
        window.update({i: column(a, i - k - 1) for i in used})
        _compare(window, final_program)
        medians.append(window[middle])
    return tf.reshape(tf.stack(medians, 2), [h, 2 * pairs, c])[:, :w]


def _cutout(image, seeds):
    """Always applied once chosen: albumentations' OneOf calls the chosen transform with
    force_apply=True, so its own p (config.yaml prob 0.5) only weights the choice (aug.py:69-72)."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    rows, cols = tf.range(h)[:, None], tf.range(w)[None, :]
    keep = tf.ones([h, w], tf.bool)
    for i in range(3):
        s = tf.random.experimental.stateless_split(seeds[1 + i], 4)
        y = tf.random.stateless_uniform([], s[0], 0, h, dtype=tf.int32)
        x = tf.random.stateless_uniform([], s[1], 0, w, dtype=tf.int32)
        hole_h = tf.random.stateless_uniform([], s[2], 1, 26, dtype=tf.int32)
        hole_w = tf.random.stateless_uniform([], s[3], 1, 26, dtype=tf.int32)
        hole = (rows >= y - hole_h // 2) & (rows < y + hole_h - hole_h // 2) & \
               (cols >= x - hole_w // 2) & (cols < x + hole_w - hole_w // 2)
        keep = keep & ~hole
    return tf.where(~keep[..., None], 0.0, image)


def _hsv_shift(image, seeds):
    hsv = tf.image.rgb_to_hsv(image)
    hue = tf.math.floormod(hsv[..., 0] + _u(seeds[0], -20.0, 20.0) / 180.0, 1.0)
    sat = tf.clip_by_value(hsv[..., 1] + _u(seeds[1], -30.0, 30.0) / 255.0, 0.0, 1.0)
    val = tf.clip_by_value(hsv[..., 2] + _u(seeds[2], -20.0, 20.0) / 255.0, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hue, sat, val], -1))


def _sharpen(image, seeds):
    alpha = _u(seeds[0], 0.2, 0.5)
    lightness = _u(seeds[1], 0.5, 1.0)
    identity = tf.constant([[0, 0, 0], [0, 1, 0], [0, 0, 0]], tf.float32)
    edges = tf.constant([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], tf.float32)
    kernel = (1 - alpha) * identity + alpha * (edges + lightness * identity)
    return _depthwise(image, kernel)


def corrupt(image, seed):
    """With probability 1/2 one of the eight corruptions of the blurred input (h, w, 3) in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 8)
    apply = _u(seeds[0]) < 0.5
    choice = tf.random.stateless_uniform([], seeds[1], 0, len(CORRUPTIONS), dtype=tf.int32)
    choice = tf.where(apply, choice, -1)
    p = tf.random.experimental.stateless_split(seeds[2], 4)
    median_k = tf.random.stateless_uniform([], seeds[3], 0, 3, dtype=tf.int32)
    quality = tf.random.stateless_uniform([], seeds[4], 70, 91, dtype=tf.int32)
    branches = [
        lambda: image,
        lambda: _cutout(image, p),
        lambda: tf.image.adjust_jpeg_quality(image, quality),
        lambda: _depthwise(image, _motion_kernel(p)),
        lambda: tf.switch_case(median_k, [lambda: _median(image, 3), lambda: _median(image, 5),
                                          lambda: _median(image, 7)]),
        lambda: tf.pow(tf.maximum(image, 0.0), _u(p[0], 0.8, 1.2)),
        lambda: image + _u(p[0], -20.0, 20.0, (3,)) / 255.0,
        lambda: _hsv_shift(image, p),
        lambda: _sharpen(image, p),
    ]
    out = tf.switch_case(choice + 1, branches)
    out = tf.clip_by_value(tf.reshape(out, tf.shape(image)), 0.0, 1.0)
    out.set_shape(image.shape)
    return out
