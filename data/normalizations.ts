/**
 * The per-channel mean and std each dataset's images are normalised with (in [0, 1] units), apart from the
 * synthetic set's, which are its training images' own (data/synthetic.ts: channelStats).
 * @module
 */
import type { Normalization } from "./transforms.ts";

/** CIFAR-10 channel mean and std (reference.md). */
export const CIFAR10_NORMALIZATION: Normalization = { mean: [0.4912, 0.4821, 0.4465], std: [0.2452, 0.2428, 0.2606] };
/** CIFAR-100 channel mean and std. */
export const CIFAR100_NORMALIZATION: Normalization = {
  mean: [0.5071, 0.4865, 0.4409],
  std: [0.2673, 0.2564, 0.2762],
};
/** ImageNet channel mean and std, also used for any class-folder dataset. */
export const IMAGENET_NORMALIZATION: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
