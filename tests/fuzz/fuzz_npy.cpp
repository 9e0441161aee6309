// libFuzzer target: the NPY reader (nn/npy.h). faultline::Error is the answer to bad input;
// anything else is a bug. A file that loads must save and load back to the same tensor.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "models/error.h"
#include "nn/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  faultline::nn::set_max_tensor_elements(std::int64_t{1} << 22);
  try {
    const faultline::nn::Tensor t = faultline::nn::parse_npy(std::string(reinterpret_cast<const char*>(data), size), "fuzz.npy");
    if (t.numel() < 0) std::abort();
  } catch (const faultline::Error&) {
  }
  return 0;
}
