// A substrate that takes its values from a behavioural one and adds counters of its own: how
// the cycle level (timing) and the RTL level (integer products on RTL) attach to a layer.
#pragma once

#include <memory>
#include <mutex>

#include "models/substrate.h"
#include "sim/cycle_level.h"

namespace faultline::sim {

class WrappedSubstrate : public models::Substrate {
 public:
  explicit WrappedSubstrate(std::unique_ptr<models::Substrate> inner) : inner_(std::move(inner)) {}

  std::string kind() const override { return inner_->kind(); }
  Eigen::Index outputs() const override { return inner_->outputs(); }
  Eigen::Index inputs() const override { return inner_->inputs(); }
  // The behavioural model's counters and this wrapper's.
  void add_counters(std::map<std::string, double>& out) const override {
    inner_->add_counters(out);
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, value] : own_) out[key] += value;
  }

 protected:
  models::Substrate& inner() const { return *inner_; }
  // Thread-safe: multiplies may run on several threads.
  void add_own(const Counters& counters) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, value] : counters) own_[key] += value;
  }
  void clear_own() {
    std::lock_guard<std::mutex> lock(mutex_);
    own_.clear();
  }

 private:
  std::unique_ptr<models::Substrate> inner_;
  mutable std::mutex mutex_;
  mutable Counters own_;
};

}  // namespace faultline::sim
