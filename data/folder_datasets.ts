/**
 * Which datasets are encoded images read from a data folder: `folder` (a class-folder tree) and `imagenet` (the
 * ILSVRC-2012 archives or their extracted layouts). They, and only they, need a data folder to be given and take the
 * folder options (transforms, decoder); the CIFARs are fixed binary records, synthetic data is generated. The one
 * place that says so, for the loaders, the training and evaluation configurations and the command lines.
 * @module
 */

/** The datasets of encoded images read from a data folder. */
export const FOLDER_DATASETS = ["folder", "imagenet"] as const;

/** A dataset of encoded images read from a data folder. */
export type FolderDatasetName = typeof FOLDER_DATASETS[number];

/** Whether `dataset` is one of {@linkcode FOLDER_DATASETS} (any value: old configuration files are checked too). */
export function isFolderDataset(dataset: unknown): dataset is FolderDatasetName {
  return (FOLDER_DATASETS as readonly unknown[]).includes(dataset);
}
