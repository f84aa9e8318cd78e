import { assertEquals } from "../assert.ts";
import { FOLDER_DATASETS, isFolderDataset } from "../../data/folder_datasets.ts";
import { DATASETS } from "../../train/config.ts";

Deno.test("isFolderDataset: folder and imagenet, of the datasets a run accepts; nothing else", () => {
  assertEquals(DATASETS.filter(isFolderDataset), ["folder", "imagenet"]);
  assertEquals([...FOLDER_DATASETS], ["folder", "imagenet"]);
  // Old configuration files are checked with it too: any value is a question, not an error.
  assertEquals([undefined, null, 1, "Folder", ["folder"]].map(isFolderDataset), [false, false, false, false, false]);
});
