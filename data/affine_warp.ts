/**
 * torchvision's tensor affine warp with nearest-neighbour sampling, for the geometric operations of the automatic
 * augmentations (ShearX/Y, TranslateX/Y, Rotate): the inverse matrix of `F._get_inverse_affine_matrix`, then the
 * sampling grid of `F_t._gen_affine_grid` and `grid_sample(mode="nearest", padding_mode="zeros",
 * align_corners=False)`, pixels outside the image taking the fill colour. The grid is computed in float32 in
 * PyTorch's order of operations, so that the nearest pixel is the same even where a source coordinate lies close to a
 * half-integer (see `tests/data/augment_ops_test.ts`, which compares with torchvision itself).
 * @module
 */

const fround = Math.fround;

/** CPython's `math.radians` (`x * (π / 180)`, one rounding). */
export function radians(degrees: number): number {
  return degrees * (Math.PI / 180);
}

/** CPython's `math.degrees` (`x * (180 / π)`, one rounding). */
export function degrees(radians: number): number {
  return radians * (180 / Math.PI);
}

/**
 * A 2×3 inverse affine matrix `[a, b, c, d, e, f]`: the source point of output point (x, y) is
 * (a·x + b·y + c, d·x + e·y + f), both in pixels relative to the image centre.
 */
export type AffineMatrix = [number, number, number, number, number, number];

/**
 * torchvision's `_get_inverse_affine_matrix(center, angle, translate, scale, shear)` (in doubles, as Python computes
 * it): the inverse of T · C · R(angle) · S(scale) · SHy(shear[1]) · SHx(shear[0]) · C⁻¹. Angles in degrees,
 * clockwise for `F.affine`; `center` and `translate` in pixels, the centre relative to the image centre as the tensor
 * path passes it.
 */
export function inverseAffineMatrix(
  center: readonly [number, number],
  angle: number,
  translate: readonly [number, number],
  scale: number,
  shear: readonly [number, number],
): AffineMatrix {
  const rot = radians(angle), sx = radians(shear[0]), sy = radians(shear[1]);
  const [cx, cy] = center, [tx, ty] = translate;
  // Rotation · shear without scaling; its determinant is 1, so the inverse is the adjugate.
  const a = Math.cos(rot - sy) / Math.cos(sy);
  const b = -Math.cos(rot - sy) * Math.tan(sx) / Math.cos(sy) - Math.sin(rot);
  const c = Math.sin(rot - sy) / Math.cos(sy);
  const d = -Math.sin(rot - sy) * Math.tan(sx) / Math.cos(sy) + Math.cos(rot);
  const m: AffineMatrix = [d / scale, -b / scale, 0 / scale, -c / scale, a / scale, 0 / scale];
  m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
  m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
  m[2] += cx;
  m[5] += cy;
  return m;
}

/**
 * Warps an `h`×`w` HWC RGB byte image through `matrix` (see {@linkcode AffineMatrix}) into `dst` with
 * nearest-neighbour sampling; output pixels whose source lies outside the image take `fill` (RGB bytes). `src` and
 * `dst` are distinct `h`·`w`·3 arrays.
 */
export function warpAffineNearest(
  src: Uint8Array,
  dst: Uint8Array,
  h: number,
  w: number,
  matrix: Readonly<AffineMatrix>,
  fill: readonly [number, number, number],
): void {
  // _gen_affine_grid: theta (float32) divided by the half sizes, so the grid comes out in [-1, 1] units.
  const halfW = fround(0.5 * w), halfH = fround(0.5 * h);
  const ax = fround(fround(matrix[0]) / halfW), bx = fround(fround(matrix[1]) / halfW);
  const cx = fround(fround(matrix[2]) / halfW);
  const ay = fround(fround(matrix[3]) / halfH), by = fround(fround(matrix[4]) / halfH);
  const cy = fround(fround(matrix[5]) / halfH);
  const f0 = fill[0], f1 = fill[1], f2 = fill[2];
  // Pixel centres relative to the image centre (torch.linspace(-w/2 + 0.5, w/2 - 0.5, w): exact half-integers), and
  // their products with the column coefficients, which do not depend on the row.
  const xx = new Float64Array(w), xy = new Float64Array(w);
  for (let j = 0; j < w; j++) {
    const x = j - w / 2 + 0.5;
    xx[j] = fround(x * ax);
    xy[j] = fround(x * ay);
  }
  for (let i = 0; i < h; i++) {
    const y = i - h / 2 + 0.5;
    const yx = fround(y * bx), yy = fround(y * by);
    let o = i * w * 3;
    for (let j = 0; j < w; j++, o += 3) {
      // The grid point (base_grid.bmm(rescaled_theta)), then grid_sample's unnormalise ((g + 1)·size/2 − 0.5).
      const gx = fround(fround(xx[j] + yx) + cx);
      const gy = fround(fround(xy[j] + yy) + cy);
      const u = fround(fround(fround(gx + 1) * halfW) - 0.5), v = fround(fround(fround(gy + 1) * halfH) - 0.5);
      // Nearest: round half to even (std::nearbyint); roundHalfEven written out, as this loop is the hot spot.
      let sx = Math.round(u), sy = Math.round(v);
      if (sx - u === 0.5 && (sx & 1) !== 0) sx--;
      if (sy - v === 0.5 && (sy & 1) !== 0) sy--;
      if (sx >= 0 && sx < w && sy >= 0 && sy < h) {
        const s = (sy * w + sx) * 3;
        dst[o] = src[s];
        dst[o + 1] = src[s + 1];
        dst[o + 2] = src[s + 2];
      } else {
        dst[o] = f0;
        dst[o + 1] = f1;
        dst[o + 2] = f2;
      }
    }
  }
}

/**
 * The warp of a translation by whole pixels (`dx` right, `dy` down), as a copy of rows: for integer shifts the grid's
 * float32 rounding (relative 1e-7) never moves a source coordinate by a half, so this equals
 * {@linkcode warpAffineNearest} of the translation's matrix exactly (the torchvision comparison covers every
 * TranslateX/Y bin).
 */
export function translateNearest(
  src: Uint8Array,
  dst: Uint8Array,
  h: number,
  w: number,
  dx: number,
  dy: number,
  fill: readonly [number, number, number],
): void {
  const row = w * 3;
  // Output columns [x0, x1) read source columns [x0 − dx, x1 − dx); the rest of each row is fill.
  const x0 = Math.min(w, Math.max(0, dx)), x1 = Math.max(0, Math.min(w, w + dx));
  const fillRange = (from: number, to: number) => {
    for (let o = from; o < to; o += 3) {
      dst[o] = fill[0];
      dst[o + 1] = fill[1];
      dst[o + 2] = fill[2];
    }
  };
  for (let i = 0; i < h; i++) {
    const sy = i - dy, o = i * row;
    if (sy < 0 || sy >= h || x1 <= x0) {
      fillRange(o, o + row);
      continue;
    }
    fillRange(o, o + x0 * 3);
    dst.set(src.subarray(sy * row + (x0 - dx) * 3, sy * row + (x1 - dx) * 3), o + x0 * 3);
    fillRange(o + x1 * 3, o + row);
  }
}
