#include "nn/dataset.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "models/error.h"

namespace faultline::nn {

Tensor Dataset::batch(std::int64_t first, std::int64_t n) const {
  if (first < 0 || n < 0 || first + n > count) throw std::out_of_range("Dataset::batch out of range");
  const std::int64_t size = image_size();
  std::vector<float> values(images.begin() + first * size, images.begin() + (first + n) * size);
  return Tensor::floats({n, channels, height, width}, std::move(values));
}

Tensor Dataset::gather(const std::vector<std::int64_t>& indices) const {
  const std::int64_t size = image_size();
  Tensor t({static_cast<std::int64_t>(indices.size()), channels, height, width});
  for (std::size_t k = 0; k < indices.size(); ++k)
    std::memcpy(t.f() + static_cast<std::int64_t>(k) * size, images.data() + indices[k] * size, sizeof(float) * static_cast<std::size_t>(size));
  return t;
}

namespace {

// Reads a whole file through zlib, which passes uncompressed files through unchanged.
std::vector<std::uint8_t> read_maybe_gzip(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw Error(path + ": cannot open file");
  std::vector<std::uint8_t> data;
  std::vector<std::uint8_t> chunk(1 << 16);
  for (;;) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose(file);
      throw Error(path + ": corrupt or truncated gzip data (" + message + ")");
    }
    if (n == 0) break;
    data.insert(data.end(), chunk.begin(), chunk.begin() + n);
  }
  // A gzip stream cut short reads as a clean end of file; zlib reports it on close.
  int code = 0;
  gzerror(file, &code);
  const int closed = gzclose(file);
  if (code != Z_OK && code != Z_STREAM_END) throw Error(path + ": corrupt or truncated gzip data");
  if (closed == Z_BUF_ERROR) throw Error(path + ": truncated gzip data (the stream ends early)");
  if (closed != Z_OK) throw Error(path + ": corrupt gzip data");
  return data;
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  std::vector<std::uint8_t> bytes = read_maybe_gzip(path);
  if (bytes.size() < 4) throw Error(path + ": not an IDX file (shorter than its 4-byte header)");
  if (bytes[0] != 0 || bytes[1] != 0) throw Error(path + ": not an IDX file (bad magic number)");
  if (bytes[2] != 0x08) throw Error(path + ": IDX element type 0x" + std::to_string(bytes[2]) + " is not supported (only unsigned bytes, 0x08)");
  const int rank = bytes[3];
  if (rank < 1 || rank > 4) throw Error(path + ": IDX file has " + std::to_string(rank) + " dimensions (1 to 4 expected)");
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header) throw Error(path + ": truncated IDX header");
  IdxArray array;
  std::int64_t total = 1;
  for (int d = 0; d < rank; ++d) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * d;
    const std::int64_t dim = (std::int64_t{p[0]} << 24) | (std::int64_t{p[1]} << 16) | (std::int64_t{p[2]} << 8) | p[3];
    array.dims.push_back(dim);
    total *= dim;
    if (total > (std::int64_t{1} << 34)) throw Error(path + ": IDX dimensions are implausibly large");
  }
  const std::int64_t have = static_cast<std::int64_t>(bytes.size() - header);
  if (have < total) throw Error(path + ": truncated IDX data (" + std::to_string(have) + " of " + std::to_string(total) + " bytes)");
  if (have > total) throw Error(path + ": IDX file has " + std::to_string(have - total) + " bytes past the declared data");
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

std::string dataset_folder(const std::string& spec) {
  if (spec == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return spec;
}

Dataset load_mnist_family(const std::string& spec, bool train) {
  const std::string folder = dataset_folder(spec);
  if (!std::filesystem::is_directory(folder)) {
    if (spec == "fashion-mnist") throw Error(folder + ": Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    throw Error(spec + ": not a dataset name (fashion-mnist) or a folder");
  }
  const std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& stem) {
    for (const char* suffix : {".gz", ""}) {
      const std::string path = folder + "/" + prefix + "-" + stem + suffix;
      if (std::filesystem::exists(path)) return path;
    }
    throw Error(folder + ": missing " + prefix + "-" + stem + "[.gz]");
  };
  const std::string image_path = find("images-idx3-ubyte");
  const std::string label_path = find("labels-idx1-ubyte");
  IdxArray images = read_idx(image_path);
  IdxArray labels = read_idx(label_path);
  if (images.dims.size() != 3) throw Error(image_path + ": images must have 3 dimensions (count, rows, columns)");
  if (labels.dims.size() != 1) throw Error(label_path + ": labels must have 1 dimension");
  if (images.dims[0] != labels.dims[0])
    throw Error(label_path + ": " + std::to_string(labels.dims[0]) + " labels for " + std::to_string(images.dims[0]) + " images");
  Dataset ds;
  ds.name = spec;
  ds.count = images.dims[0];
  ds.height = images.dims[1];
  ds.width = images.dims[2];
  ds.images.resize(images.data.size());
  for (std::size_t k = 0; k < images.data.size(); ++k) ds.images[k] = static_cast<float>(images.data[k]) / 255.0f;
  ds.labels = std::move(labels.data);
  for (std::size_t k = 0; k < ds.labels.size(); ++k)
    if (ds.labels[k] >= ds.classes)
      throw Error(label_path + ": label " + std::to_string(ds.labels[k]) + " at index " + std::to_string(k) + " is not a class 0-9");
  return ds;
}

}  // namespace faultline::nn
