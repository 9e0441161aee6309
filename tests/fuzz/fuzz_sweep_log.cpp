// libFuzzer target: the sweep resume log's row reader (studies/sweep.h), one line per call as the
// resume reads it. faultline::Error is the answer to bad input; anything else is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/error.h"
#include "studies/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0, line = 1;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    try {
      (void)faultline::studies::parse_sweep_row(text.substr(start, end - start), "fuzz.jsonl", static_cast<int>(line));
    } catch (const faultline::Error&) {
    }
    start = end + 1;
    ++line;
  }
  return 0;
}
