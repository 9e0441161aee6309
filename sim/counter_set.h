// Counters of a unit's modules, kept twice: running totals over the whole simulation, and the
// part that belongs to the operation now running (attributed to its layer). Keeping the
// operation's own sums, rather than differences of running totals, makes a layer's figures the
// same bits however much ran before it.
#pragma once

#include "sim/cycle_level.h"

namespace faultline::sim {

class CounterSet {
 public:
  void add(const std::string& key, double value) {
    totals_[key] += value;
    if (operation_) (*operation_)[key] += value;
  }
  const Counters& totals() const { return totals_; }
  double total(const std::string& key) const {
    const auto it = totals_.find(key);
    return it == totals_.end() ? 0.0 : it->second;
  }
  // Counts from now on also go to `operation` (nullptr: totals only).
  void attribute_to(Counters* operation) { operation_ = operation; }

 private:
  Counters totals_;
  Counters* operation_ = nullptr;
};

}  // namespace faultline::sim
