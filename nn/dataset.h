// Image classification datasets: the IDX format of MNIST and Fashion-MNIST (LeCun et al., "THE
// MNIST DATABASE" file format: big-endian magic 0x0000 08 NN, where NN is the number of
// dimensions, then NN big-endian uint32 sizes, then uint8 data), optionally gzip-compressed;
// folders of NumPy arrays (images.npy, labels.npy); and CIFAR-10's binary batches (Krizhevsky,
// "Learning Multiple Layers of Features from Tiny Images", 2009, and the dataset page
// https://www.cs.toronto.edu/~kriz/cifar.html: records of 1 label byte then 3072 pixel bytes,
// the 1024 red, then green, then blue values of a 32x32 image in row-major order).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/tensor.h"

namespace faultline::nn {

class JsonWriter;

// How images are read and preprocessed: x = stored value · scale, then (x − mean_c) / std_c per
// channel c when a normalization is given (as torchvision's Normalize).
struct DataOptions {
  std::string layout = "nchw";   // images.npy's axis order: "nchw" or "nhwc" (rank 3: N, H, W)
  std::string scale;             // "" = 1/255 for stored bytes, 1 for stored floats; "A" or "A/B"
  std::vector<float> mean, std;  // per channel (or one value for every channel); empty = none
};
// Parses the command-line forms: layout "nchw"/"nhwc", scale "A" or "A/B" (positive, finite),
// normalize "m1,m2,...:s1,s2,..." (stds positive). Throws faultline::Error naming the field.
DataOptions parse_data_options(const std::string& layout, const std::string& scale, const std::string& normalize);

// What was applied to a dataset, for the result files.
struct Preprocessing {
  std::string format = "idx";    // "idx", "npy" or "cifar10"
  std::string layout = "nchw";
  std::string scale = "1/255";
  std::vector<float> mean, std;
  bool is_default() const { return format == "idx" && scale == "1/255" && mean.empty(); }
  void write_json(JsonWriter& j) const;
};

struct Dataset {
  std::string name;
  Preprocessing preprocessing;
  std::vector<std::string> class_names;  // when the format names its classes; else empty
  std::int64_t count = 0;
  std::int64_t channels = 1, height = 0, width = 0;
  int classes = 10;
  std::vector<float> images;        // count × channels × height × width, scaled to [0, 1]
  std::vector<std::uint8_t> labels;  // count

  std::int64_t image_size() const { return channels * height * width; }
  // Images [first, first + n) as an N×C×H×W tensor.
  Tensor batch(std::int64_t first, std::int64_t n) const;
  // The images at the given indices, in that order.
  Tensor gather(const std::vector<std::int64_t>& indices) const;
};

// Reads an IDX file (plain or gzip); returns the dims and the raw bytes. Throws faultline::Error
// naming the file for a missing, truncated or malformed file.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};
// `expected_rank` > 0 checks the whole magic number (0x000008 then the rank) first, so that a
// wrong file is named as such. Files (after gzip) are limited to kMaxIdxBytes.
constexpr std::size_t kMaxIdxBytes = std::size_t{1} << 34;
IdxArray read_idx(const std::string& path, int expected_rank = 0);
// The same from the file's bytes (plain or gzip); `path` names the source in errors.
IdxArray parse_idx(std::vector<std::uint8_t> bytes, const std::string& path, int expected_rank = 0);

// Loads the training or test split of an MNIST-family dataset. `spec` is "fashion-mnist"
// (Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist) or a folder holding
// {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz].
Dataset load_mnist_family(const std::string& spec, bool train);

// Loads the training or test split of any supported dataset: "fashion-mnist", a folder of IDX
// files (as load_mnist_family), a folder with CIFAR-10's binary batches (data_batch_1.bin ...
// data_batch_5.bin, test_batch.bin; directly or in cifar-10-batches-bin/), or a folder with
// images.npy and labels.npy (one split, used for both; or train/ and test/ subfolders holding
// them). Images are uint8, float32 or float64, [N, C, H, W] or [N, H, W, C] (`options.layout`)
// or [N, H, W]; labels integers 0..255 of rank 1. Throws faultline::Error naming the file.
Dataset load_dataset(const std::string& spec, bool train, const DataOptions& options = {});

// The folder a dataset spec names.
std::string dataset_folder(const std::string& spec);

}  // namespace faultline::nn
