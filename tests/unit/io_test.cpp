// ONNX, IDX and NPY readers on good and bad files: bad files are one clear error naming the file.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "models/files.h"
#include "models/philox.h"
#include "nn/dataset.h"
#include "nn/json.h"
#include "nn/npy.h"
#include "nn/onnx_io.h"
#include "nn/train.h"

using namespace faultline;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("faultline_io_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// Expects `f` to throw faultline::Error whose one-line message contains every needle.
template <typename F>
void expect_error(F f, std::vector<std::string> needles) {
  try {
    f();
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

std::string idx_bytes(std::vector<std::uint32_t> dims, std::size_t data_bytes, std::uint8_t type = 0x08) {
  std::string s = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (auto d : dims) for (int k = 3; k >= 0; --k) s += static_cast<char>((d >> (8 * k)) & 0xff);
  for (std::size_t k = 0; k < data_bytes; ++k) s += static_cast<char>(k % 10);
  return s;
}

TEST(Onnx, ExportedModelPassesTheOnnxCheckerAndLoadsBack) {
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 3);
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(net.to_onnx()));
  EXPECT_NO_THROW(onnx::checker::check_model(model));
  auto graph = nn::parse_onnx(net.to_onnx(), "lenet5.onnx");
  EXPECT_EQ(graph->layers().size(), 5u);
  graph->program_ideal();
  auto y = graph->run({nn::Tensor({2, 1, 28, 28})});
  EXPECT_EQ(y[0].shape(), (nn::Shape{2, 10}));
}

TEST(Onnx, MalformedFilesAreErrorsNamingTheFile) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "garbage.onnx", std::string("\xff\xfe this is not protobuf \x01\x02"));
  expect_error([&] { nn::load_onnx((dir / "garbage.onnx").string()); }, {"garbage.onnx", "not an ONNX model"});
  write_bytes(dir / "empty.onnx", "");
  expect_error([&] { nn::load_onnx((dir / "empty.onnx").string()); }, {"empty.onnx", "not an ONNX model"});
  nn::TrainableNetwork net("mlp", 1, 28, 28, 10, 3);
  const std::string good = net.to_onnx();
  write_bytes(dir / "truncated.onnx", good.substr(0, good.size() / 2));
  expect_error([&] { nn::load_onnx((dir / "truncated.onnx").string()); }, {"truncated.onnx"});
  expect_error([&] { nn::load_onnx((dir / "missing.onnx").string()); }, {"missing.onnx", "no such file"});
}

TEST(Onnx, UnsupportedOperatorNamesFileNodeOpAndOpset) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  auto* op = model.add_opset_import();
  op->set_version(13);
  auto* g = model.mutable_graph();
  auto* in = g->add_input();
  in->set_name("x");
  in->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* n = g->add_node();
  n->set_op_type("Einsum");
  n->set_name("mix");
  n->add_input("x");
  n->add_output("y");
  g->add_output()->set_name("y");
  try {
    nn::parse_onnx(model.SerializeAsString(), "net.onnx");
    FAIL();
  } catch (const UnsupportedError& e) {
    EXPECT_EQ(std::string(e.what()), "net.onnx: node 'mix' (Einsum, opset 13): unsupported operator");
  }
  op->set_version(19);
  expect_error([&] { nn::parse_onnx(model.SerializeAsString(), "net.onnx"); }, {"net.onnx", "opset 19"});
}

// Random byte corruptions of a valid model: each either loads and runs, or is a faultline::Error;
// never a crash (the sanitizer build runs this too).
TEST(Onnx, CorruptedModelsNeverCrash) {
  nn::TrainableNetwork net("lenet5", 1, 28, 28, 10, 3);
  const std::string good = net.to_onnx();
  const models::CounterRng rng(17, 0);
  int loaded = 0, rejected = 0;
  for (std::uint64_t trial = 0; trial < 300; ++trial) {
    std::string bytes = good;
    const int flips = 1 + static_cast<int>(rng.below(trial * 8, 8));
    for (int f = 0; f < flips; ++f) {
      // Bias corruptions towards the structure (the graph and attributes sit before and between
      // the large weight blobs, but the first few hundred bytes hold the header and node list).
      const std::uint32_t span = rng.below(trial * 8 + 1 + f, 4) == 0 ? static_cast<std::uint32_t>(bytes.size()) : 600u;
      const std::uint32_t at = rng.below(trial * 8 + 5 + f, std::min<std::uint32_t>(span, static_cast<std::uint32_t>(bytes.size())));
      bytes[at] = static_cast<char>(rng.below(trial * 8 + 7 + f, 256));
    }
    try {
      auto g = nn::parse_onnx(bytes, "corrupt.onnx");
      g->program_ideal();
      std::vector<nn::Tensor> inputs;
      for (const auto& in : g->inputs()) {
        nn::Shape shape = in.shape;
        for (auto& d : shape) if (d < 0) d = 2;
        if (!in.shape_known) shape = {2, 1, 28, 28};
        if (nn::shape_numel(shape) > (1 << 22)) throw Error("input too large for this test");
        inputs.emplace_back(shape, in.dtype);
      }
      g->run(inputs);
      ++loaded;
    } catch (const Error&) {
      ++rejected;
    }
  }
  RecordProperty("loaded", loaded);
  RecordProperty("rejected", rejected);
  EXPECT_EQ(loaded + rejected, 300);
  EXPECT_GT(rejected, 0);
}

TEST(Idx, ReadsPlainAndGzip) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "a.idx", idx_bytes({2, 3}, 6));
  write_gzip(dir / "a.idx.gz", idx_bytes({2, 3}, 6));
  for (const char* name : {"a.idx", "a.idx.gz"}) {
    auto a = nn::read_idx((dir / name).string());
    EXPECT_EQ(a.dims, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(a.data.size(), 6u);
    EXPECT_EQ(a.data[5], 5);
  }
}

TEST(Idx, MalformedFilesAreErrors) {
  const fs::path dir = temp_dir();
  write_bytes(dir / "short.idx", idx_bytes({2, 3}, 5));
  expect_error([&] { nn::read_idx((dir / "short.idx").string()); }, {"short.idx", "truncated IDX data"});
  write_bytes(dir / "long.idx", idx_bytes({2, 3}, 7));
  expect_error([&] { nn::read_idx((dir / "long.idx").string()); }, {"long.idx", "past the declared data"});
  write_bytes(dir / "magic.idx", "\x01\x02\x08\x01\x00\x00\x00\x01x");
  expect_error([&] { nn::read_idx((dir / "magic.idx").string()); }, {"magic.idx", "bad magic"});
  write_bytes(dir / "type.idx", idx_bytes({2}, 8, 0x0D));
  expect_error([&] { nn::read_idx((dir / "type.idx").string()); }, {"type.idx", "element type"});
  write_bytes(dir / "header.idx", std::string("\x00\x00\x08\x03\x00\x00", 6));
  expect_error([&] { nn::read_idx((dir / "header.idx").string()); }, {"header.idx", "truncated IDX header"});
  // A gzip file cut in the middle of its compressed stream.
  write_gzip(dir / "cut.gz", idx_bytes({100, 100}, 10000));
  std::ifstream in(dir / "cut.gz", std::ios::binary);
  std::string whole((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir / "cut.gz", whole.substr(0, whole.size() / 2));
  expect_error([&] { nn::read_idx((dir / "cut.gz").string()); }, {"cut.gz"});
  expect_error([&] { nn::read_idx((dir / "absent.idx").string()); }, {"absent.idx", "no such file"});
}

TEST(Idx, DatasetFolderChecksPairing) {
  const fs::path dir = temp_dir() / "ds";
  fs::create_directories(dir);
  write_bytes(dir / "t10k-images-idx3-ubyte", idx_bytes({3, 2, 2}, 12));
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx_bytes({2}, 2));
  expect_error([&] { nn::load_mnist_family(dir.string(), false); }, {"t10k-labels-idx1-ubyte", "2 labels for 3 images"});
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx_bytes({3}, 3));
  auto ds = nn::load_mnist_family(dir.string(), false);
  EXPECT_EQ(ds.count, 3);
  EXPECT_EQ(ds.height, 2);
  expect_error([&] { nn::load_mnist_family(dir.string(), true); }, {"missing train-images-idx3-ubyte"});
  expect_error([&] { nn::load_mnist_family((dir / "nope").string(), true); }, {"nope", "not a dataset"});
}

// An .npy file of bytes (dtype |u1), as numpy writes it.
std::string npy_u8(const std::vector<std::int64_t>& shape, const std::vector<std::uint8_t>& values) {
  std::string dims;
  for (std::size_t k = 0; k < shape.size(); ++k) dims += std::to_string(shape[k]) + (shape.size() == 1 || k + 1 < shape.size() ? "," : "");
  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + std::string(values.begin(), values.end());
}

// A folder of images.npy + labels.npy: NHWC bytes read with --layout nhwc are the NCHW transpose,
// scaled by 1/255 with the same bits as the IDX reader; floats are kept as stored; normalization
// is (x − mean_c) / std_c; classes follow the highest label.
TEST(Dataset, NpyFolderLayoutsScaleAndNormalize) {
  const fs::path dir = temp_dir() / "npyds";
  fs::create_directories(dir / "nhwc");
  fs::create_directories(dir / "nchw");
  const std::int64_t n = 2, c = 3, h = 2, w = 4;
  std::vector<std::uint8_t> nhwc(static_cast<std::size_t>(n * c * h * w)), nchw(nhwc.size());
  for (std::size_t k = 0; k < nhwc.size(); ++k) nhwc[k] = static_cast<std::uint8_t>((k * 37 + 11) % 256);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x)
        for (std::int64_t ch = 0; ch < c; ++ch) nchw[((i * c + ch) * h + y) * w + x] = nhwc[((i * h + y) * w + x) * c + ch];
  write_bytes(dir / "nhwc" / "images.npy", npy_u8({n, h, w, c}, nhwc));
  write_bytes(dir / "nchw" / "images.npy", npy_u8({n, c, h, w}, nchw));
  for (const char* sub : {"nhwc", "nchw"}) nn::save_npy((dir / sub / "labels.npy").string(), nn::Tensor::ints({2}, {4, 1}));
  const nn::Dataset a = nn::load_dataset((dir / "nhwc").string(), false, nn::parse_data_options("nhwc", "", ""));
  const nn::Dataset b = nn::load_dataset((dir / "nchw").string(), false, {});
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(a.height, 2);
  EXPECT_EQ(a.width, 4);
  EXPECT_EQ(a.classes, 5);
  EXPECT_EQ(a.labels, (std::vector<std::uint8_t>{4, 1}));
  EXPECT_EQ(a.images, b.images);
  for (std::size_t k = 0; k < nchw.size(); ++k) ASSERT_EQ(b.images[k], static_cast<float>(nchw[k]) / 255.0f) << k;
  EXPECT_EQ(b.preprocessing.format, "npy");
  EXPECT_EQ(b.preprocessing.scale, "1/255");
  // Normalization per channel after a scale.
  const nn::Dataset norm = nn::load_dataset((dir / "nchw").string(), false, nn::parse_data_options("nchw", "2/255", "0.1,0.2,0.3:0.5,1,2"));
  const float mean[3] = {0.1f, 0.2f, 0.3f}, stddev[3] = {0.5f, 1, 2};
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < h * w; ++p) {
        const std::size_t k = static_cast<std::size_t>((i * c + ch) * h * w + p);
        ASSERT_EQ(norm.images[k], (static_cast<float>(nchw[k]) * 2.0f / 255.0f - mean[ch]) / stddev[ch]) << k;
      }
  nn::JsonWriter j;
  norm.preprocessing.write_json(j);
  EXPECT_NE(j.str().find("\"scale\":\"2/255\""), std::string::npos) << j.str();
  EXPECT_NE(j.str().find("\"normalize\":{\"mean\":[0.10000000149011612"), std::string::npos) << j.str();
  // Float images are taken as stored (scale 1), rank 3 is one channel; train/ and test/ subfolders are the splits.
  fs::create_directories(dir / "split" / "train");
  fs::create_directories(dir / "split" / "test");
  nn::save_npy((dir / "split" / "train" / "images.npy").string(), nn::Tensor::floats({1, 2, 2}, {0.5f, -3.25f, 1e-7f, 7}));
  nn::save_npy((dir / "split" / "train" / "labels.npy").string(), nn::Tensor::ints({1}, {0}));
  nn::save_npy((dir / "split" / "test" / "images.npy").string(), nn::Tensor::floats({1, 2, 2}, {1, 2, 3, 4}));
  nn::save_npy((dir / "split" / "test" / "labels.npy").string(), nn::Tensor::ints({1}, {1}));
  const nn::Dataset train = nn::load_dataset((dir / "split").string(), true);
  EXPECT_EQ(train.images, (std::vector<float>{0.5f, -3.25f, 1e-7f, 7}));
  EXPECT_EQ(train.channels, 1);
  EXPECT_EQ(nn::load_dataset((dir / "split").string(), false).images, (std::vector<float>{1, 2, 3, 4}));
}

// CIFAR-10 binary batches: label byte then the red, green and blue planes; data_batch_1..N for
// training, test_batch for testing; the classes are named.
TEST(Dataset, Cifar10Batches) {
  const fs::path dir = temp_dir() / "cifar" / "cifar-10-batches-bin";
  fs::create_directories(dir);
  auto record = [](std::uint8_t label, std::uint8_t base) {
    std::string r(1, static_cast<char>(label));
    for (int k = 0; k < 3072; ++k) r += static_cast<char>((base + k / 1024 * 100 + k % 1024 % 7) % 256);
    return r;
  };
  write_bytes(dir / "data_batch_1.bin", record(6, 0) + record(9, 1));
  write_bytes(dir / "data_batch_2.bin", record(2, 2));
  write_bytes(dir / "test_batch.bin", record(3, 5));
  const nn::Dataset train = nn::load_dataset((dir.parent_path()).string(), true);
  EXPECT_EQ(train.count, 3);
  EXPECT_EQ(train.labels, (std::vector<std::uint8_t>{6, 9, 2}));
  EXPECT_EQ(train.channels, 3);
  EXPECT_EQ(train.class_names.at(6), "frog");
  // Image 1, green plane (channel 1), pixel 5: stored byte 1 + 1024 + 5 of record 1.
  EXPECT_EQ(train.images[3072 + 1024 + 5], static_cast<float>((1 + 100 + 5) % 256) / 255.0f);
  const nn::Dataset test = nn::load_dataset(dir.string(), false, nn::parse_data_options("nchw", "1", "125:50"));
  EXPECT_EQ(test.count, 1);
  EXPECT_EQ(test.images[2048], (static_cast<float>((5 + 200) % 256) - 125.0f) / 50.0f);
  EXPECT_EQ(test.preprocessing.format, "cifar10");
  expect_error([&] { nn::load_dataset(dir.string(), false, nn::parse_data_options("nchw", "", "1,2:3,4")); }, {"test_batch.bin", "2 values", "3 channel"});
}

TEST(Npy, RoundTripAndErrors) {
  const fs::path dir = temp_dir();
  nn::Tensor t = nn::Tensor::floats({2, 3}, {1, 2, 3, 4, 5, 6.5f});
  nn::save_npy((dir / "t.npy").string(), t);
  nn::Tensor back = nn::load_npy((dir / "t.npy").string());
  EXPECT_EQ(back.shape(), t.shape());
  EXPECT_EQ(back.float_storage(), t.float_storage());
  nn::Tensor i = nn::Tensor::ints({3}, {7, -8, 9});
  nn::save_npy((dir / "i.npy").string(), i);
  EXPECT_EQ(nn::load_npy((dir / "i.npy").string()).int_storage(), i.int_storage());

  std::ifstream in(dir / "t.npy", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir / "cut.npy", bytes.substr(0, bytes.size() - 3));
  expect_error([&] { nn::load_npy((dir / "cut.npy").string()); }, {"cut.npy", "truncated NPY data"});
  write_bytes(dir / "magic.npy", "NUMPY not really");
  expect_error([&] { nn::load_npy((dir / "magic.npy").string()); }, {"magic.npy", "not an NPY file"});
  std::string fortran = bytes;
  fortran.replace(fortran.find("False"), 5, "True ");
  write_bytes(dir / "fortran.npy", fortran);
  expect_error([&] { nn::load_npy((dir / "fortran.npy").string()); }, {"fortran.npy", "Fortran"});
  std::string complex = bytes;
  complex.replace(complex.find("<f4"), 3, "<c8");
  write_bytes(dir / "complex.npy", complex);
  expect_error([&] { nn::load_npy((dir / "complex.npy").string()); }, {"complex.npy", "dtype"});
}

}  // namespace

// The strict JSON reader (nn/json.h): values, positions, and every way a file can be wrong.
TEST(Json, ReadsValuesExactly) {
  const nn::JsonValue v = nn::parse_json(R"({"a": [1, -2.5e3, true, null], "s": "x\u00e9\ud83d\ude00\n", "big": 18446744073709551615})", "t.json");
  ASSERT_EQ(v.type, nn::JsonValue::Type::Object);
  const auto& a = v.at("a").array("a");
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].int64("a[0]"), 1);
  EXPECT_EQ(a[1].number("a[1]"), -2500.0);
  EXPECT_TRUE(a[2].boolean);
  EXPECT_TRUE(a[3].is_null());
  EXPECT_EQ(v.at("s").string("s"), "x\xc3\xa9\xf0\x9f\x98\x80\n");
  EXPECT_EQ(v.at("big").uint64("big"), 18446744073709551615ull);  // beyond a double's 2^53: kept exact
  EXPECT_EQ(v.at("a").where(), "t.json:1:7");
}

TEST(Json, MalformedTextIsAnErrorWithItsPosition) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "unexpected end"}, {"{", "expected a string key"}, {"{\"a\":1,}", "expected a string key"}, {"[1,]", "unexpected character"},
      {"{},{}", "unexpected text after"}, {"01", "unexpected text after"}, {"1.", "malformed number"}, {"-", "malformed number"},
      {"\"\\x\"", "unknown escape"}, {"\"\xff\"", "invalid UTF-8"}, {"\"\xc0\xaf\"", "invalid UTF-8"}, {"\"\\ud800\"", "surrogate"},
      {"\"a\nb\"", "control character"}, {"{\"k\":1,\"k\":2}", "repeated"}, {"nul", "unexpected character"}, {"[1 2]", "expected ','"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper"}};
  for (const auto& [text, needle] : bad) {
    try {
      nn::parse_json(text, "bad.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(msg.rfind("bad.json:", 0), 0u) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << "'" << needle << "' not in: " << msg;
    }
  }
  const nn::JsonValue v = nn::parse_json("{\"n\": \"x\", \"i\": 1.5}", "f.json", 7);
  expect_error([&] { v.at("n").number("n"); }, {"f.json:7:7", "'n' must be a number"});
  expect_error([&] { v.at("i").int64("i"); }, {"f.json:7:17", "integer"});
  expect_error([&] { v.at("missing"); }, {"f.json:7:1", "missing field 'missing'"});
  expect_error([&] { nn::parse_json("1e999", "f.json").number("x"); }, {"out of range"});
}

// Result files are written whole or not at all (models/files.h).
TEST(Files, WritesWholeOrNotAtAll) {
  const fs::path dir = temp_dir();
  const std::string target = (dir / "r.json").string();
  write_file_atomically(target, "good\n");
  expect_error([&] { write_file_atomically("/dev/full", "x"); }, {"/dev/full", "write failed"});
  expect_error([&] { write_file_atomically((dir / "no" / "r.json").string(), "x"); }, {"no", "does not exist"});
  fs::create_directory(dir / "d");
  expect_error([&] { write_file_atomically((dir / "d").string(), "x"); }, {"is a folder"});
  write_file_atomically(target, "better\n");
  std::ifstream in(target);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "better\n");
  in.close();
  std::size_t leftovers = 0;
  for (const auto& e : fs::directory_iterator(dir)) leftovers += e.path().filename().string().rfind(".r.json.", 0) == 0;
  EXPECT_EQ(leftovers, 0u) << "temporary files left behind";
  fs::create_symlink(target, dir / "link.json");
  write_file_atomically((dir / "link.json").string(), "through the link\n");
  EXPECT_TRUE(fs::is_symlink(dir / "link.json")) << "a link to a result file must stay a link";
  EXPECT_EQ(fs::file_size(target), std::string("through the link\n").size());
  expect_error([&] { read_input_file((dir / "d").string()); }, {"is a folder, not a file"});
  expect_error([&] { read_input_file((dir / "absent").string()); }, {"absent", "no such file"});
  expect_error([&] { check_output_file("", "--out"); }, {"--out", "empty"});
  expect_error([&] { check_output_folder((dir / "a" / "b").string(), "--out"); }, {"--out", "does not exist"});
  expect_error([&] { check_output_folder(target, "--out"); }, {"not a folder"});
  EXPECT_NO_THROW(check_output_folder((dir / "new").string(), "--out"));
  write_file_atomically((dir / "cut.vcd").string(), "$enddefinitions $end\n#10");
  expect_error([&] { check_written_file((dir / "cut.vcd").string(), true); }, {"cut.vcd", "disk full"});
}

TEST(Npy, HostileHeadersAreErrors) {
  auto npy = [](const std::string& header) {
    std::string h = header + std::string((64 - (10 + header.size() + 1) % 64) % 64, ' ') + "\n";
    return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size() & 0xff) + static_cast<char>(h.size() >> 8) + h;
  };
  expect_error([&] { nn::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"), "a.npy"); },
               {"a.npy", "too many elements"});
  expect_error([&] { nn::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3x, 4), }"), "b.npy"); }, {"b.npy", "malformed NPY shape"});
  expect_error([&] { nn::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 4), }"), "c.npy"); }, {"c.npy", "truncated NPY data"});
  std::string stored;
  const nn::Tensor t = nn::parse_npy(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }") + std::string("\x07\x00\x00\x00", 4), "d.npy", &stored);
  EXPECT_EQ(stored, "int32");
  EXPECT_EQ(t.i()[0], 7);
}
