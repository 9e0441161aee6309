// A minimal JSON writer for result files (objects, arrays, strings, numbers, booleans).
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace faultline::nn {

class JsonWriter {
 public:
  JsonWriter& begin_object() { value_prefix(); out_ += '{'; first_.push_back(true); return *this; }
  JsonWriter& end_object() { out_ += '}'; first_.pop_back(); return *this; }
  JsonWriter& begin_array() { value_prefix(); out_ += '['; first_.push_back(true); return *this; }
  JsonWriter& end_array() { out_ += ']'; first_.pop_back(); return *this; }
  JsonWriter& key(const std::string& k) {
    separator();
    string_literal(k);
    out_ += ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(const std::string& s) { value_prefix(); string_literal(s); return *this; }
  JsonWriter& value(const char* s) { return value(std::string(s)); }
  JsonWriter& value(bool b) { value_prefix(); out_ += b ? "true" : "false"; return *this; }
  JsonWriter& value(long long v) { value_prefix(); out_ += std::to_string(v); return *this; }
  JsonWriter& value(int v) { return value(static_cast<long long>(v)); }
  JsonWriter& value(long v) { return value(static_cast<long long>(v)); }
  JsonWriter& value(unsigned long v) { value_prefix(); out_ += std::to_string(v); return *this; }
  JsonWriter& value(unsigned long long v) { value_prefix(); out_ += std::to_string(v); return *this; }
  // Doubles print with 17 significant digits so that they read back to the same bits.
  JsonWriter& value(double v) {
    value_prefix();
    if (!std::isfinite(v)) { out_ += "null"; return *this; }
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", v);
    out_ += buffer;
    return *this;
  }
  // Inserts already-formatted JSON (e.g. a sub-document written by another JsonWriter).
  JsonWriter& raw(const std::string& json) { value_prefix(); out_ += json; return *this; }
  const std::string& str() const { return out_; }

 private:
  void separator() {
    if (!first_.empty()) {
      if (!first_.back()) out_ += ',';
      first_.back() = false;
    }
  }
  void value_prefix() {
    if (after_key_) { after_key_ = false; return; }
    separator();
  }
  void string_literal(const std::string& s) {
    out_ += '"';
    for (const char ch : s) {
      const unsigned char c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"': out_ += "\\\""; break;
        case '\\': out_ += "\\\\"; break;
        case '\n': out_ += "\\n"; break;
        case '\t': out_ += "\\t"; break;
        case '\r': out_ += "\\r"; break;
        default:
          if (c < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); out_ += b; }
          else out_ += ch;
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace faultline::nn
