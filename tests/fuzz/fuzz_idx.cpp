// libFuzzer target: the IDX reader (nn/dataset.h), plain and gzip, with and without an expected
// rank. faultline::Error is the answer to bad input; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "models/error.h"
#include "nn/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  for (int rank : {0, 1, 3}) {
    try {
      const faultline::nn::IdxArray a = faultline::nn::parse_idx(bytes, "fuzz.idx", rank);
      std::size_t total = 1;
      for (auto d : a.dims) total *= static_cast<std::size_t>(d);
      if (total != a.data.size()) std::abort();  // the reader promised exactly the declared data
    } catch (const faultline::Error&) {
    }
  }
  return 0;
}
