/**
 * The three convolution passes (forward, backprop-input, backprop-filter) of an NHWC, dilation-1 convolution written
 * as implicit GEMMs for {@linkcode GemmProgram}: the dimension mapping and the WGSL address arithmetic of each operand.
 *
 * Notation (tfjs layouts): x [B, IH, IW, CI], w [KH, KW, CI, CO], y/dy [B, OH, OW, CO], with
 * ih = oh · SH − PT + r and iw = ow · SW − PL + c for filter tap (r, c).
 * @module
 */
import { read, type UntiledGemmSpec, zero } from "./gemm_program.ts";

/** Geometry of one NHWC convolution with dilation 1 (the subset of tfjs's `Conv2DInfo` we use). */
export interface ConvGeometry {
  /** Images in the batch (N). */
  batch: number;
  /** Input height (IH). */
  inHeight: number;
  /** Input width (IW). */
  inWidth: number;
  /** Input channels (CI). */
  inChannels: number;
  /** Output height (OH). */
  outHeight: number;
  /** Output width (OW). */
  outWidth: number;
  /** Output channels (CO). */
  outChannels: number;
  /** Filter height (KH). */
  filterHeight: number;
  /** Filter width (KW). */
  filterWidth: number;
  /** Vertical stride (SH). */
  strideHeight: number;
  /** Horizontal stride (SW). */
  strideWidth: number;
  /** Zero rows added above the input (PT). */
  padTop: number;
  /** Zero columns added left of the input (PL). */
  padLeft: number;
}

function geometryKey(g: ConvGeometry): string {
  return [
    g.batch,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.filterHeight,
    g.filterWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
  ].join("_");
}

/**
 * WGSL that splits the flat `index` of a row-major [·, midSize, innerSize] grid into `names` = (outer, mid, inner),
 * inner fastest: an output pixel index into (n, oh, ow), or a filter-tap index into (r, c, channel).
 */
function unflatten(index: string, names: [string, string, string], midSize: number, innerSize: number): string {
  const [outer, mid, inner] = names;
  return `
  let ${inner} = ${index} % ${innerSize};
  let ${index}_rest = ${index} / ${innerSize};
  let ${mid} = ${index}_rest % ${midSize};
  let ${outer} = ${index}_rest / ${midSize};`;
}

/** WGSL that reads x at image `n`, output pixel (oh, ow), tap (r, c), channel ci; zero in the padding. */
function readX(g: ConvGeometry, vec4: boolean): string {
  return `
  let ih = oh * ${g.strideHeight} - ${g.padTop} + r;
  let iw = ow * ${g.strideWidth} - ${g.padLeft} + c;
  if (ih < 0 || ih >= ${g.inHeight} || iw < 0 || iw >= ${g.inWidth}) { return ${zero(vec4)}; }
  return ${read("x", `((n * ${g.inHeight} + ih) * ${g.inWidth} + iw) * ${g.inChannels} + ci`, vec4)};`;
}

/**
 * Forward: y[M = B·OH·OW, N = CO] = im2col(x)[M, K = KH·KW·CI] · w[K, N]. The output is NHWC as it stands.
 * Inputs: `x`, `w`.
 */
export function convForwardSpec(g: ConvGeometry): UntiledGemmSpec {
  // Groups of four along ci (A) and co (B) are contiguous when the channel counts are multiples of 4.
  const aVec4 = g.inChannels % 4 === 0, bVec4 = g.outChannels % 4 === 0;
  return {
    key: `convFwd_${geometryKey(g)}`,
    variableNames: ["x", "w"],
    batch: 1,
    m: g.batch * g.outHeight * g.outWidth,
    n: g.outChannels,
    k: g.filterHeight * g.filterWidth * g.inChannels,
    // m → (n, oh, ow); k → (r, c, ci) with ci fastest, so consecutive k are consecutive addresses.
    loadA: unflatten("m", ["n", "oh", "ow"], g.outHeight, g.outWidth) +
      unflatten("k", ["r", "c", "ci"], g.filterWidth, g.inChannels) + readX(g, aVec4),
    loadB: `return ${read("w", `k * ${g.outChannels} + n`, bVec4)};`,
    aContiguous: "k",
    bContiguous: "n",
    aVec4,
    bVec4,
    outputShape: [g.batch, g.outHeight, g.outWidth, g.outChannels],
  };
}

/**
 * Backprop-filter: dw[M = KH·KW·CI, N = CO] = im2col(x)ᵀ[M, K = B·OH·OW] · dy[K, N]. The [M, N] result is the
 * [KH, KW, CI, CO] filter gradient as it stands. K is long (batch × pixels), hence split-K. Inputs: `x`, `dy`.
 */
export function convBackpropFilterSpec(g: ConvGeometry): UntiledGemmSpec {
  const aVec4 = g.inChannels % 4 === 0, bVec4 = g.outChannels % 4 === 0;
  return {
    key: `convDw_${geometryKey(g)}`,
    variableNames: ["x", "dy"],
    batch: 1,
    m: g.filterHeight * g.filterWidth * g.inChannels,
    n: g.outChannels,
    k: g.batch * g.outHeight * g.outWidth,
    // m → (r, c, ci) with ci fastest (contiguous in x); k → (n, oh, ow).
    loadA: unflatten("m", ["r", "c", "ci"], g.filterWidth, g.inChannels) +
      unflatten("k", ["n", "oh", "ow"], g.outHeight, g.outWidth) + readX(g, aVec4),
    loadB: `return ${read("dy", `k * ${g.outChannels} + n`, bVec4)};`,
    aContiguous: "m",
    bContiguous: "n",
    aVec4,
    bVec4,
    outputShape: [g.filterHeight, g.filterWidth, g.inChannels, g.outChannels],
  };
}

/**
 * Backprop-input: dx[M = B·IH·IW, N = CI] = A[M, K = KH·KW·CO] · B[K, N] with A(m, (r, c, co)) = dy[n, oh, ow, co]
 * where ih = oh·SH − PT + r has an integral solution oh in range (zero otherwise), and B((r, c, co), ci) =
 * w[r, c, ci, co]. With stride 2, three taps in four are structural zeros (a known inefficiency; see
 * KERNEL_NOTES.md). Inputs: `dy`, `w`.
 */
export function convBackpropInputSpec(g: ConvGeometry): UntiledGemmSpec {
  // Both operands run along co, contiguous in dy and in w.
  const vec4 = g.outChannels % 4 === 0;
  return {
    key: `convDx_${geometryKey(g)}`,
    variableNames: ["dy", "w"],
    batch: 1,
    m: g.batch * g.inHeight * g.inWidth,
    n: g.inChannels,
    k: g.filterHeight * g.filterWidth * g.outChannels,
    loadA: unflatten("m", ["n", "ih", "iw"], g.inHeight, g.inWidth) +
      unflatten("k", ["r", "c", "co"], g.filterWidth, g.outChannels) + `
  let ohs = ih + ${g.padTop} - r;
  let ows = iw + ${g.padLeft} - c;
  if (ohs < 0 || ows < 0 || ohs % ${g.strideHeight} != 0 || ows % ${g.strideWidth} != 0) { return ${zero(vec4)}; }
  let oh = ohs / ${g.strideHeight};
  let ow = ows / ${g.strideWidth};
  if (oh >= ${g.outHeight} || ow >= ${g.outWidth}) { return ${zero(vec4)}; }
  return ${read("dy", `((n * ${g.outHeight} + oh) * ${g.outWidth} + ow) * ${g.outChannels} + co`, vec4)};`,
    loadB: `
  let co = k % ${g.outChannels};
  let rc = k / ${g.outChannels};
  return ${read("w", `(rc * ${g.inChannels} + n) * ${g.outChannels} + co`, vec4)};`,
    aContiguous: "k",
    bContiguous: "k",
    aVec4: vec4,
    bVec4: vec4,
    outputShape: [g.batch, g.inHeight, g.inWidth, g.inChannels],
  };
}

/**
 * Backprop-input for strided convolutions without the structural zeros of {@linkcode convBackpropInputSpec}: the
 * input pixels split into SH × SW classes by (ih + PT) mod SH and (iw + PL) mod SW; within a class exactly the taps
 * r ≡ (ih + PT) (mod SH), c likewise, reach an output pixel, so each class is a dense GEMM (M = B·nH·nW, N = CI,
 * K = tH·tW·CO) whose rows are scattered back into dx with `storeRow`. A class that no tap reaches (possible when
 * the kernel is smaller than the stride, e.g. 1×1/2) gets one dummy tap of zeros so that its rows are written.
 * Inputs of every spec: `dy`, `w`; all write the [B, IH, IW, CI] output.
 */
export function convBackpropInputParitySpecs(g: ConvGeometry): UntiledGemmSpec[] {
  const vec4 = g.outChannels % 4 === 0;
  const specs: UntiledGemmSpec[] = [];
  const axis = (q: number, pad: number, stride: number, inSize: number, kSize: number) => {
    const first = (((q - pad) % stride) + stride) % stride; // first input index of the class
    const count = first < inSize ? Math.ceil((inSize - first) / stride) : 0;
    const taps = q < kSize ? Math.ceil((kSize - q) / stride) : 0;
    return { first, count, taps, shift: (first + pad - q) / stride };
  };
  for (let qh = 0; qh < g.strideHeight; qh++) {
    for (let qw = 0; qw < g.strideWidth; qw++) {
      const h = axis(qh, g.padTop, g.strideHeight, g.inHeight, g.filterHeight);
      const w = axis(qw, g.padLeft, g.strideWidth, g.inWidth, g.filterWidth);
      if (h.count === 0 || w.count === 0) continue;
      const noTaps = h.taps === 0 || w.taps === 0;
      const tH = Math.max(h.taps, 1), tW = Math.max(w.taps, 1);
      // m → (n, t, u): input pixel (first_h + SH·t, first_w + SW·u); k → (j, l, co): tap (qh + SH·j, qw + SW·l).
      const rowOf = unflatten("m", ["n", "t", "u"], h.count, w.count);
      const tapOf = unflatten("k", ["j", "l", "co"], tW, g.outChannels);
      specs.push({
        key: `convDxParity_${geometryKey(g)}_${qh}_${qw}`,
        variableNames: ["dy", "w"],
        batch: 1,
        m: g.batch * h.count * w.count,
        n: g.inChannels,
        k: tH * tW * g.outChannels,
        // The dummy class still reads its bindings: the 'auto' pipeline layout drops unused ones.
        loadA: noTaps ? `_ = dy[0];\n  return ${zero(vec4)};` : `${rowOf}${tapOf}
  let oh = t - j + ${h.shift};
  let ow = u - l + ${w.shift};
  if (oh < 0 || oh >= ${g.outHeight} || ow < 0 || ow >= ${g.outWidth}) { return ${zero(vec4)}; }
  return ${read("dy", `((n * ${g.outHeight} + oh) * ${g.outWidth} + ow) * ${g.outChannels} + co`, vec4)};`,
        loadB: noTaps ? `_ = w[0];\n  return ${zero(vec4)};` : `${tapOf}
  let r = ${qh} + ${g.strideHeight} * j;
  let c = ${qw} + ${g.strideWidth} * l;
  return ${read("w", `((r * ${g.filterWidth} + c) * ${g.inChannels} + n) * ${g.outChannels} + co`, vec4)};`,
        aContiguous: "k",
        bContiguous: "k",
        aVec4: vec4,
        bVec4: vec4,
        outputShape: [g.batch, g.inHeight, g.inWidth, g.inChannels],
        storeRow: `${rowOf}
  _ = z;
  let ih = ${h.first} + ${g.strideHeight} * t;
  let iw = ${w.first} + ${g.strideWidth} * u;
  return ((n * ${g.inHeight} + ih) * ${g.inWidth} + iw) * ${g.inChannels};`,
      });
    }
  }
  return specs;
}
