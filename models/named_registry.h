// A registry of things by name that register themselves from static initializers (hardware
// kinds, their cycle models, their RTL bindings): thread-safe, never destroyed (registrations may
// run in any order before main, look-ups from any static object's destructor), and a name
// registered twice is a build mistake reported at start.
#pragma once

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace faultline::models {

template <class T>
class NamedRegistry {
 public:
  // `what` names the kind of entry in the double-registration message ("cycle model").
  explicit NamedRegistry(std::string what) : what_(std::move(what)) {}

  void add(const std::string& name, T value) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!items_.emplace(name, std::move(value)).second) throw std::logic_error(what_ + " '" + name + "' registered twice");
  }
  // Entries are never removed, so the pointer stays valid.
  const T* find(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = items_.find(name);
    return it == items_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& entry : items_) out.push_back(entry.first);
    return out;
  }

 private:
  std::string what_;
  mutable std::mutex mutex_;
  std::map<std::string, T> items_;
};

}  // namespace faultline::models
