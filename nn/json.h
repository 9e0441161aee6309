// JSON for result files: a minimal writer, and a strict reader (RFC 8259) for the files Faultline
// reads back (trace sidecars, sweep logs). The reader is its own because yaml-cpp, which reads
// JSON as YAML, never returns on some malformed inputs (found by fuzzing, issue 12).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
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

// One parsed JSON value. Accessors throw faultline::Error "SOURCE:LINE:COL: WHAT ..." naming
// the value's position, so that every reader's messages point into the file.
class JsonValue {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  std::string text;  // a string's value, or a number as written (integers beyond 2^53 stay exact)
  std::vector<JsonValue> items;                           // array
  std::vector<std::pair<std::string, JsonValue>> members;  // object, in file order, keys unique
  int line = 0, column = 0;
  std::shared_ptr<const std::string> source;

  std::string where() const;  // "SOURCE:LINE:COL"
  bool is_null() const { return type == Type::Null; }
  // Member `key` of an object (throws when this is not an object or `key` is missing).
  const JsonValue& at(const std::string& key) const;
  const JsonValue* find(const std::string& key) const;  // nullptr when missing
  const std::vector<JsonValue>& array(const std::string& what) const;
  const std::string& string(const std::string& what) const;
  double number(const std::string& what) const;  // finite
  std::int64_t int64(const std::string& what) const;
  std::uint64_t uint64(const std::string& what) const;
};

// Parses exactly one JSON value (surrounded only by white space). Throws faultline::Error
// "SOURCE:LINE:COL: ..." for anything else, for a repeated key in an object, for nesting deeper
// than kMaxJsonDepth and for invalid UTF-8 in a string.
constexpr int kMaxJsonDepth = 64;
// `first_line` is the line number of the text's first line in its file (a line of a log).
JsonValue parse_json(const std::string& text, const std::string& source, int first_line = 1);

}  // namespace faultline::nn
