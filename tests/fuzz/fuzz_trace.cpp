// libFuzzer target: the trace reader (traces/trace.h). The input is the sidecar trace.json of a
// folder that also holds two small valid arrays (a.npy [2, 3] float32, b.npy [3] int64), so that
// the reader gets as far as it would on a real trace. faultline::Error is the answer to bad
// input; anything else is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "models/error.h"
#include "nn/npy.h"
#include "traces/trace.h"

namespace {
std::string trace_folder() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/faultline-fuzz-trace-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    faultline::nn::save_npy(std::string(tmpl) + "/a.npy", faultline::nn::Tensor::floats({2, 3}, {1, 2, 3, 4, 5, 6}));
    faultline::nn::save_npy(std::string(tmpl) + "/b.npy", faultline::nn::Tensor::ints({3}, {1, 2, 3}));
    return std::string(tmpl);
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string dir = trace_folder();
  {
    std::ofstream out(dir + "/trace.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) std::abort();
  }
  try {
    (void)faultline::traces::read_trace(dir);
  } catch (const faultline::Error&) {
  }
  return 0;
}
