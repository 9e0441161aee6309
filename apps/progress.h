// A progress bar on stderr with rate and time left, drawn only when stderr is a terminal (quiet
// in pipes, logs and CI).
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace faultline::app {

class ProgressBar {
 public:
  // `unit` names what is counted ("images", "rows", ...), for the rate.
  explicit ProgressBar(std::string label, std::string unit = "")
      : label_(std::move(label)), unit_(std::move(unit)), enabled_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}
  ~ProgressBar() { finish(); }

  void update(std::int64_t done, std::int64_t total) {
    if (!enabled_ || total <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const int width = 24;
    const int filled = static_cast<int>(width * done / total);
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? done / elapsed : 0;
    char tail[64] = "";
    if (done > 0 && rate > 0) {
      const long left = static_cast<long>((total - done) / rate + 0.5);
      std::snprintf(tail, sizeof tail, "  %.3g %s/s  ETA %ld:%02ld", rate, unit_.empty() ? "it" : unit_.c_str(), left / 60, left % 60);
    }
    std::fprintf(stderr, "\r%s [%s%s] %3d%%%s  ", label_.c_str(), std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                 static_cast<int>(100 * done / total), tail);
    std::fflush(stderr);
    drawn_ = true;
    width_ = static_cast<int>(label_.size()) + width + 8 + static_cast<int>(std::string(tail).size()) + 2;
  }

  // Clears the bar (before other output, and at the end); the next update draws it again.
  void finish() {
    if (drawn_) std::fprintf(stderr, "\r%*s\r", width_, "");
    drawn_ = false;
  }

 private:
  std::string label_, unit_;
  bool enabled_;
  bool drawn_ = false;
  int width_ = 0;
  std::chrono::steady_clock::time_point start_, last_{};
};

}  // namespace faultline::app
