// Image classification datasets in the IDX format of MNIST and Fashion-MNIST
// (LeCun et al., "THE MNIST DATABASE" file format: big-endian magic 0x0000 08 NN, where NN is
// the number of dimensions, then NN big-endian uint32 sizes, then uint8 data), optionally
// gzip-compressed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/tensor.h"

namespace faultline::nn {

struct Dataset {
  std::string name;
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

// The folder a dataset spec names.
std::string dataset_folder(const std::string& spec);

}  // namespace faultline::nn
