#include "nn/dataset.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "models/error.h"
#include "models/files.h"

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

// Inflates a gzip member (RFC 1952) with zlib; `limit` caps the output, so that a small hostile
// file cannot expand into all of memory.
std::vector<std::uint8_t> gunzip(const std::vector<std::uint8_t>& in, const std::string& path, std::size_t limit) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw Error(path + ": cannot start gzip decompression");
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 16);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  int code = Z_OK;
  while (code != Z_STREAM_END) {
    z.next_out = chunk.data();
    z.avail_out = static_cast<uInt>(chunk.size());
    code = inflate(&z, Z_NO_FLUSH);
    if (code != Z_OK && code != Z_STREAM_END) {
      inflateEnd(&z);
      throw Error(path + (code == Z_BUF_ERROR ? ": truncated gzip data (the stream ends early)" : ": corrupt gzip data"));
    }
    out.insert(out.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(chunk.size() - z.avail_out));
    if (out.size() > limit) {
      inflateEnd(&z);
      throw Error(path + ": gzip data expands beyond " + std::to_string(limit >> 20) + " MiB");
    }
  }
  const bool trailing = z.avail_in != 0;
  inflateEnd(&z);
  if (trailing) throw Error(path + ": bytes after the end of the gzip data");
  return out;
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
  const std::string raw = read_input_file(path);
  return parse_idx(std::vector<std::uint8_t>(raw.begin(), raw.end()), path, expected_rank);
}

IdxArray parse_idx(std::vector<std::uint8_t> bytes, const std::string& path, int expected_rank) {
  if (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b) bytes = gunzip(bytes, path, kMaxIdxBytes);
  if (expected_rank > 0 && (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 || bytes[3] != expected_rank)) {
    char found[16] = "(none)";
    if (bytes.size() >= 4) std::snprintf(found, sizeof found, "0x%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3]);
    throw Error(path + ": not an IDX file of " + std::to_string(expected_rank) + " dimensions (magic number " + found + ", expected 0x000008" +
                (expected_rank < 16 ? "0" : "") + std::to_string(expected_rank) + ")");
  }
  if (bytes.size() < 4) throw Error(path + ": not an IDX file (shorter than its 4-byte header)");
  if (bytes[0] != 0 || bytes[1] != 0) throw Error(path + ": not an IDX file (bad magic number)");
  if (bytes[2] != 0x08) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02x", bytes[2]);
    throw Error(path + ": IDX element type " + type + " is not supported (only unsigned bytes, 0x08)");
  }
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
    if (dim != 0 && total > static_cast<std::int64_t>(kMaxIdxBytes) / dim) throw Error(path + ": IDX dimensions are implausibly large");
    total *= dim;
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
  IdxArray images = read_idx(image_path, 3);
  IdxArray labels = read_idx(label_path, 1);
  if (images.dims.size() != 3) throw Error(image_path + ": images must have 3 dimensions (count, rows, columns)");
  if (labels.dims.size() != 1) throw Error(label_path + ": labels must have 1 dimension");
  if (images.dims[0] != labels.dims[0])
    throw Error(label_path + ": " + std::to_string(labels.dims[0]) + " labels for " + std::to_string(images.dims[0]) + " images");
  Dataset ds;
  ds.name = spec;
  if (images.dims[0] == 0) throw Error(image_path + ": holds no images");
  if (images.dims[1] == 0 || images.dims[2] == 0) throw Error(image_path + ": images of " + std::to_string(images.dims[1]) + "x" + std::to_string(images.dims[2]) + " pixels");
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
