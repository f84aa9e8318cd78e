/**
 * Decodes one image file to its RGB pixels at its own size, with `sharp` (libvips, any format, colour-managed) or
 * with `jpeg-js` (pure JavaScript, JPEG only). The JavaScript decoder exists for single-file bundles such as the GPU
 * machine's, which cannot carry sharp's native addon; it is also faster than sharp on tiny images (0.10 vs 0.57 ms
 * for a 32×32 CIFAR JPEG on this 2-core machine). Its pixels are not libjpeg's: it upsamples chroma by replication
 * where libjpeg (and so PIL and sharp) interpolates, a mean difference of about 2.5 levels in 255 on CIFAR-10.
 * @module
 */
import { FieldMessageError } from "../io/config_error.ts";
import { loadSharp, sharpRGB } from "./image_decode.ts";

/** Which library decodes folder images: `sharp` (default) or `js` (jpeg-js, JPEG only, bundle-friendly). */
export type ImageDecoder = "sharp" | "js";

/** The decoders {@linkcode decodeRGB} knows. */
export const IMAGE_DECODERS: readonly ImageDecoder[] = ["sharp", "js"];

/** A decoded image. */
export interface RGBImage {
  /** [height, width, 3] bytes, HWC. */
  pixels: Uint8Array;
  height: number;
  width: number;
}

// deno-lint-ignore no-explicit-any
let jpegPromise: Promise<any> | undefined;

/**
 * Decodes `bytes` to 3-channel sRGB. Grayscale, CMYK and alpha images come out as RGB with both decoders (jpeg-js
 * converts CMYK without a colour profile).
 * @throws {Error} for a corrupt, truncated or (with `js`) non-JPEG file.
 */
export async function decodeRGB(bytes: Uint8Array, decoder: ImageDecoder): Promise<RGBImage> {
  if (decoder === "js") {
    jpegPromise ??= import("jpeg-js").then((m) => m.default ?? m);
    const jpeg = await jpegPromise;
    if (bytes[0] !== 0xff || bytes[1] !== 0xd8) {
      throw new FieldMessageError(
        "not a JPEG (no FF D8 start marker); the js decoder reads JPEG only, use {decoder} sharp",
      );
    }
    // tolerantDecoding off: a truncated file is an error, as with sharp's failOn "truncated".
    const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false });
    const pixels: Uint8Array = image.data;
    if (pixels.length !== image.width * image.height * 3) {
      throw new Error(`decoded to ${pixels.length} bytes for ${image.width}x${image.height}, expected RGB`);
    }
    return { pixels, height: image.height, width: image.width };
  }
  const sharp = await loadSharp();
  return await sharpRGB(sharp(bytes, { failOn: "truncated" }));
}
