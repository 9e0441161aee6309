#include "nn/dataset.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "models/error.h"
#include "models/files.h"
#include "nn/evaluate.h"
#include "nn/json.h"
#include "nn/npy.h"

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

namespace {

// A strictly parsed finite number (the whole text).
double parse_number(const std::string& text, const std::string& field) {
  const char* begin = text.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (text.empty() || end != begin + text.size() || !std::isfinite(v) || std::isspace(static_cast<unsigned char>(text[0])))
    throw Error(field + ": '" + text + "' is not a number");
  return v;
}

std::vector<float> parse_list(const std::string& text, const std::string& field, bool positive) {
  std::vector<float> values;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const double v = parse_number(item, field);
    if (positive && !(v > 0)) throw Error(field + ": " + item + " must be positive");
    values.push_back(static_cast<float>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

// The scale "A" or "A/B" as the float pair applied as value · A / B (so that the default 1/255
// gives the same bits as dividing by 255).
struct Scale {
  float numerator = 1, denominator = 1;
};
Scale parse_scale(const std::string& text) {
  const std::size_t slash = text.find('/');
  Scale s;
  const double a = parse_number(text.substr(0, slash), "scale");
  const double b = slash == std::string::npos ? 1.0 : parse_number(text.substr(slash + 1), "scale");
  if (!(a > 0) || !(b > 0)) throw Error("scale: '" + text + "' must be positive");
  s.numerator = static_cast<float>(a);
  s.denominator = static_cast<float>(b);
  if (!(s.numerator > 0) || !(s.denominator > 0) || !std::isfinite(s.numerator) || !std::isfinite(s.denominator))
    throw Error("scale: '" + text + "' is out of the float range");
  return s;
}

// Fills ds.images from raw values (bytes or floats) in N×C×H×W order and records what was done.
template <typename Value>
void fill_images(Dataset& ds, const Value* values, const DataOptions& o, bool bytes, const std::string& source) {
  const std::string scale_text = o.scale.empty() ? (bytes ? "1/255" : "1") : o.scale;
  const Scale scale = parse_scale(scale_text);
  const std::size_t per_channel = static_cast<std::size_t>(ds.height * ds.width);
  const std::size_t channels = static_cast<std::size_t>(ds.channels);
  for (const auto* list : {&o.mean, &o.std})
    if (!list->empty() && list->size() != 1 && list->size() != channels)
      throw Error(source + ": normalize gives " + std::to_string(list->size()) + " values for images of " + std::to_string(channels) +
                  " channel(s)");
  ds.images.resize(static_cast<std::size_t>(ds.count) * channels * per_channel);
  for (std::size_t k = 0; k < ds.images.size(); ++k) ds.images[k] = static_cast<float>(values[k]) * scale.numerator / scale.denominator;
  if (!o.mean.empty()) {
    for (std::size_t n = 0; n < static_cast<std::size_t>(ds.count); ++n)
      for (std::size_t c = 0; c < channels; ++c) {
        const float mean = o.mean.size() == 1 ? o.mean[0] : o.mean[c], stddev = o.std.size() == 1 ? o.std[0] : o.std[c];
        float* p = ds.images.data() + (n * channels + c) * per_channel;
        for (std::size_t k = 0; k < per_channel; ++k) p[k] = (p[k] - mean) / stddev;
      }
  }
  ds.preprocessing.layout = o.layout;
  ds.preprocessing.scale = scale_text;
  ds.preprocessing.mean = o.mean;
  ds.preprocessing.std = o.std;
}

Dataset load_idx_folder(const std::string& spec, const std::string& folder, bool train, const DataOptions& options) {
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
  fill_images(ds, images.data.data(), options, true, image_path);
  ds.labels = std::move(labels.data);
  for (std::size_t k = 0; k < ds.labels.size(); ++k)
    if (ds.labels[k] >= ds.classes)
      throw Error(label_path + ": label " + std::to_string(ds.labels[k]) + " at index " + std::to_string(k) + " is not a class 0-9");
  if (spec == "fashion-mnist") ds.class_names = fashion_mnist_classes();
  return ds;
}

// CIFAR-10 binary version: 10 000 records of 3073 bytes per batch file.
constexpr std::size_t kCifarRecord = 1 + 3 * 32 * 32;

Dataset load_cifar10(const std::string& spec, const std::string& folder, bool train, const DataOptions& options) {
  std::vector<std::string> files;
  if (train) {
    for (int b = 1; b <= 5; ++b) {
      const std::string path = folder + "/data_batch_" + std::to_string(b) + ".bin";
      if (!std::filesystem::exists(path)) {
        if (b == 1) throw Error(folder + ": missing data_batch_1.bin (CIFAR-10's training batches)");
        break;
      }
      files.push_back(path);
    }
  } else {
    files.push_back(folder + "/test_batch.bin");
    if (!std::filesystem::exists(files[0])) throw Error(folder + ": missing test_batch.bin (CIFAR-10's test batch)");
  }
  std::vector<std::uint8_t> pixels;
  Dataset ds;
  ds.name = spec;
  ds.channels = 3;
  ds.height = ds.width = 32;
  ds.preprocessing.format = "cifar10";
  for (const auto& path : files) {
    const std::string bytes = read_input_file(path);
    if (bytes.empty() || bytes.size() % kCifarRecord != 0)
      throw Error(path + ": " + std::to_string(bytes.size()) + " bytes is not a whole number of CIFAR-10 records (3073 bytes each: label, 3x32x32 pixels)");
    for (std::size_t r = 0; r < bytes.size() / kCifarRecord; ++r) {
      const auto* record = reinterpret_cast<const std::uint8_t*>(bytes.data()) + r * kCifarRecord;
      if (record[0] > 9) throw Error(path + ": record " + std::to_string(r) + " has label " + std::to_string(record[0]) + " (CIFAR-10 classes are 0-9)");
      ds.labels.push_back(record[0]);
      pixels.insert(pixels.end(), record + 1, record + kCifarRecord);
    }
  }
  ds.count = static_cast<std::int64_t>(ds.labels.size());
  fill_images(ds, pixels.data(), options, true, files[0]);
  ds.preprocessing.layout = "nchw";  // stored channel-major
  ds.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return ds;
}

Dataset load_npy_folder(const std::string& spec, const std::string& folder, const DataOptions& options) {
  const std::string image_path = folder + "/images.npy", label_path = folder + "/labels.npy";
  if (!std::filesystem::exists(label_path)) throw Error(folder + ": has images.npy but no labels.npy");
  std::string image_dtype, label_dtype;
  const Tensor images = load_npy(image_path, &image_dtype);
  const Tensor labels = load_npy(label_path, &label_dtype);
  const Shape& s = images.shape();
  if (s.size() != 3 && s.size() != 4)
    throw Error(image_path + ": images of rank " + std::to_string(s.size()) + " (expected [N, C, H, W], [N, H, W, C] or [N, H, W])");
  if (image_dtype != "uint8" && image_dtype != "float32" && image_dtype != "float64")
    throw Error(image_path + ": images of dtype " + image_dtype + " (uint8, float32 or float64 expected)");
  if (labels.shape().size() != 1 || labels.dtype() != DType::Int64)
    throw Error(label_path + ": labels must be integers of rank 1 (found " + label_dtype + " of rank " + std::to_string(labels.shape().size()) + ")");
  if (labels.shape()[0] != s[0])
    throw Error(label_path + ": " + std::to_string(labels.shape()[0]) + " labels for " + std::to_string(s[0]) + " images");
  if (s[0] == 0) throw Error(image_path + ": holds no images");
  Dataset ds;
  ds.name = spec;
  ds.preprocessing.format = "npy";
  ds.count = s[0];
  const bool nhwc = options.layout == "nhwc" && s.size() == 4;
  ds.channels = s.size() == 3 ? 1 : nhwc ? s[3] : s[1];
  ds.height = s.size() == 3 ? s[1] : nhwc ? s[1] : s[2];
  ds.width = s.size() == 3 ? s[2] : nhwc ? s[2] : s[3];
  if (ds.channels == 0 || ds.height == 0 || ds.width == 0) throw Error(image_path + ": images with an empty dimension");
  // Values in N×C×H×W order as floats (bytes exactly; bytes are scaled by 1/255 by default).
  const std::size_t total = static_cast<std::size_t>(images.numel());
  const bool bytes = image_dtype == "uint8";
  std::vector<float> values(total);
  const std::size_t c = static_cast<std::size_t>(ds.channels), hw = static_cast<std::size_t>(ds.height * ds.width);
  for (std::size_t k = 0; k < total; ++k) {
    // Stored index k of sample n, position p, channel ch (NHWC) goes to (n·C + ch)·HW + p.
    const std::size_t to = nhwc ? (k / (hw * c) * c + k % c) * hw + k / c % hw : k;
    values[to] = bytes ? static_cast<float>(images.i()[k]) : images.f()[k];
    if (!std::isfinite(values[to])) throw Error(image_path + ": holds a value that is not finite");
  }
  fill_images(ds, values.data(), options, bytes, image_path);
  std::int64_t highest = 0;
  ds.labels.resize(static_cast<std::size_t>(ds.count));
  for (std::int64_t k = 0; k < ds.count; ++k) {
    const std::int64_t label = labels.i()[k];
    if (label < 0 || label > 255) throw Error(label_path + ": label " + std::to_string(label) + " at index " + std::to_string(k) + " is not a class 0-255");
    ds.labels[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(label);
    highest = std::max(highest, label);
  }
  ds.classes = static_cast<int>(std::max<std::int64_t>(highest + 1, 2));
  return ds;
}

}  // namespace

DataOptions parse_data_options(const std::string& layout, const std::string& scale, const std::string& normalize) {
  DataOptions o;
  if (layout != "nchw" && layout != "nhwc") throw Error("layout: must be nchw or nhwc, got '" + layout + "'");
  o.layout = layout;
  if (!scale.empty()) parse_scale(scale);
  o.scale = scale;
  if (!normalize.empty()) {
    const std::size_t colon = normalize.find(':');
    if (colon == std::string::npos || normalize.find(':', colon + 1) != std::string::npos)
      throw Error("normalize: '" + normalize + "' is not MEAN,...:STD,... (one colon between the means and the standard deviations)");
    o.mean = parse_list(normalize.substr(0, colon), "normalize", false);
    o.std = parse_list(normalize.substr(colon + 1), "normalize", true);
    if (o.mean.size() != o.std.size())
      throw Error("normalize: " + std::to_string(o.mean.size()) + " means but " + std::to_string(o.std.size()) + " standard deviations");
  }
  return o;
}

void Preprocessing::write_json(JsonWriter& j) const {
  j.begin_object();
  j.key("format").value(format);
  j.key("layout").value(layout);
  j.key("scale").value(scale);
  if (!mean.empty()) {
    j.key("normalize").begin_object().key("mean").begin_array();
    for (float m : mean) j.value(static_cast<double>(m));
    j.end_array().key("std").begin_array();
    for (float v : std) j.value(static_cast<double>(v));
    j.end_array().end_object();
  }
  j.end_object();
}

Dataset load_mnist_family(const std::string& spec, bool train) { return load_dataset(spec, train, {}); }

Dataset load_dataset(const std::string& spec, bool train, const DataOptions& options) {
  const std::string folder = dataset_folder(spec);
  if (!std::filesystem::is_directory(folder)) {
    if (spec == "fashion-mnist") throw Error(folder + ": Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    throw Error(spec + ": not a dataset name (fashion-mnist) or a folder");
  }
  if (options.layout != "nchw" && options.layout != "nhwc") throw Error("layout: must be nchw or nhwc, got '" + options.layout + "'");
  const std::string split = folder + (train ? "/train" : "/test");
  if (std::filesystem::exists(split + "/images.npy")) return load_npy_folder(spec, split, options);
  if (std::filesystem::exists(folder + "/images.npy")) return load_npy_folder(spec, folder, options);
  for (const std::string& cifar : {folder, folder + "/cifar-10-batches-bin"})
    if (std::filesystem::exists(cifar + "/test_batch.bin") || std::filesystem::exists(cifar + "/data_batch_1.bin"))
      return load_cifar10(spec, cifar, train, options);
  if (options.layout != "nchw") throw Error("layout: nhwc applies to images.npy only (" + folder + " holds IDX files)");
  return load_idx_folder(spec, folder, train, options);
}

}  // namespace faultline::nn
