// One layer operation as the cycle level records it and hands it to a unit's system.
#pragma once

#include <cstdint>
#include <string>

#include "models/substrate.h"
#include "sim/cycle_level.h"

namespace faultline::sim {

class TimedSubstrate;

struct Operation {
  enum class Type { Program, Multiply };
  Type type = Type::Multiply;
  std::size_t unit = 0;
  int layer = 0, part = 0, parts = 1;  // models::LayerInfo index, block and block count
  std::string layer_name;              // models::LayerInfo name (a unit's per-layer schedule is by name)
  std::uint64_t seed = 0, trial = 0;   // Program: models::ProgramContext
  std::uint64_t first_row = 0;         // Multiply: global index of the first input vector
  std::int64_t vectors = 0;            // Multiply: input vectors (rows of X)
  std::uint64_t rows_per_sample = 1;   // Multiply: models::MultiplyContext::rows_per_sample
  bool last_of_block = false;          // Multiply: the last read of this (unit, layer, part) in this run_pending()
  std::int64_t inputs = 0, outputs = 0;
  // Program: what the behavioural model reported for this programming (write attempts include
  // the write-verify repeats; cells as the model counts them).
  double cells = 0, write_attempts = 0;
  models::MatrixRM weights;            // Program: the weights (the memory system stores their codes)
  // Multiply by models::Substrate::convolve: `vectors` images of this convolution (else rows of X).
  bool convolution = false;
  models::ConvShape shape;
  const TimedSubstrate* owner = nullptr;
  Counters result;                     // filled by the simulation
};

}  // namespace faultline::sim
