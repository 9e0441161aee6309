#include "nn/json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>

#include "models/error.h"

namespace faultline::nn {

std::string JsonValue::where() const { return (source ? *source : std::string("json")) + ":" + std::to_string(line) + ":" + std::to_string(column); }

namespace {

const char* type_name(JsonValue::Type t) {
  switch (t) {
    case JsonValue::Type::Null: return "null";
    case JsonValue::Type::Bool: return "a boolean";
    case JsonValue::Type::Number: return "a number";
    case JsonValue::Type::String: return "a string";
    case JsonValue::Type::Array: return "an array";
    default: return "an object";
  }
}

[[noreturn]] void wrong_type(const JsonValue& v, const std::string& what, const char* expected) {
  throw Error(v.where() + ": '" + what + "' must be " + expected + ", got " + type_name(v.type));
}

class Parser {
 public:
  Parser(const std::string& text, std::shared_ptr<const std::string> source, int first_line)
      : s_(text), source_(std::move(source)), line_(first_line) {}

  JsonValue document() {
    skip_space();
    JsonValue v = value(1);
    skip_space();
    if (k_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(*source_ + ":" + std::to_string(line_) + ":" + std::to_string(k_ - line_start_ + 1) + ": invalid JSON: " + what);
  }
  void skip_space() {
    while (k_ < s_.size() && (s_[k_] == ' ' || s_[k_] == '\t' || s_[k_] == '\r' || s_[k_] == '\n')) {
      if (s_[k_] == '\n') {
        ++line_;
        line_start_ = k_ + 1;
      }
      ++k_;
    }
  }
  JsonValue start(JsonValue::Type t) const {
    JsonValue v;
    v.type = t;
    v.line = line_;
    v.column = static_cast<int>(k_ - line_start_ + 1);
    v.source = source_;
    return v;
  }
  bool literal(const char* word) {
    const std::size_t n = std::strlen(word);
    if (s_.compare(k_, n, word) != 0) return false;
    k_ += n;
    return true;
  }

  JsonValue value(int depth) {
    if (depth > kMaxJsonDepth) fail("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    if (k_ >= s_.size()) fail("unexpected end of the file");
    const char c = s_[k_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      JsonValue v = start(JsonValue::Type::String);
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    JsonValue v = start(JsonValue::Type::Null);
    if (literal("null")) return v;
    v.type = JsonValue::Type::Bool;
    if (literal("true")) { v.boolean = true; return v; }
    if (literal("false")) return v;
    fail(std::string("unexpected character '") + (c >= 0x20 && c < 0x7f ? std::string(1, c) : "\\x" + hex(c)) + "'");
  }
  static std::string hex(char c) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(c));
    return b;
  }

  JsonValue object(int depth) {
    JsonValue v = start(JsonValue::Type::Object);
    ++k_;
    skip_space();
    std::set<std::string> keys;
    if (k_ < s_.size() && s_[k_] == '}') { ++k_; return v; }
    for (;;) {
      skip_space();
      if (k_ >= s_.size() || s_[k_] != '"') fail("expected a string key");
      const int key_line = line_;
      const std::size_t key_column = k_ - line_start_ + 1;
      std::string key = string();
      if (!keys.insert(key).second)
        throw Error(*source_ + ":" + std::to_string(key_line) + ":" + std::to_string(key_column) + ": key '" + key + "' repeated");
      skip_space();
      if (k_ >= s_.size() || s_[k_] != ':') fail("expected ':' after a key");
      ++k_;
      skip_space();
      v.members.emplace_back(std::move(key), value(depth + 1));
      skip_space();
      if (k_ < s_.size() && s_[k_] == ',') { ++k_; continue; }
      if (k_ < s_.size() && s_[k_] == '}') { ++k_; return v; }
      fail("expected ',' or '}' in an object");
    }
  }

  JsonValue array(int depth) {
    JsonValue v = start(JsonValue::Type::Array);
    ++k_;
    skip_space();
    if (k_ < s_.size() && s_[k_] == ']') { ++k_; return v; }
    for (;;) {
      skip_space();
      v.items.push_back(value(depth + 1));
      skip_space();
      if (k_ < s_.size() && s_[k_] == ',') { ++k_; continue; }
      if (k_ < s_.size() && s_[k_] == ']') { ++k_; return v; }
      fail("expected ',' or ']' in an array");
    }
  }

  // A string with its escapes; raw bytes must be valid UTF-8 (RFC 8259 section 8.1).
  std::string string() {
    ++k_;
    std::string out;
    for (;;) {
      if (k_ >= s_.size()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[k_]);
      if (c == '"') { ++k_; return out; }
      if (c < 0x20) fail("control character in a string");
      if (c == '\\') {
        if (++k_ >= s_.size()) fail("unterminated string");
        const char e = s_[k_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            std::uint32_t cp = hex4();
            if (cp >= 0xd800 && cp < 0xdc00) {
              if (!(k_ + 1 < s_.size() && s_[k_] == '\\' && s_[k_ + 1] == 'u')) fail("unpaired UTF-16 surrogate");
              k_ += 2;
              const std::uint32_t low = hex4();
              if (low < 0xdc00 || low >= 0xe000) fail("unpaired UTF-16 surrogate");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
              fail("unpaired UTF-16 surrogate");
            }
            append_utf8(out, cp);
            break;
          }
          default: fail(std::string("unknown escape '\\") + (e >= 0x20 && e < 0x7f ? std::string(1, e) : "x" + hex(e)) + "'");
        }
        continue;
      }
      // One UTF-8 sequence, checked (no overlong forms, no surrogates, at most U+10FFFF).
      int extra = c < 0x80 ? 0 : (c >= 0xc2 && c < 0xe0) ? 1 : (c >= 0xe0 && c < 0xf0) ? 2 : (c >= 0xf0 && c < 0xf5) ? 3 : -1;
      if (extra < 0) fail("invalid UTF-8 in a string");
      if (extra > 0 && k_ + static_cast<std::size_t>(extra) >= s_.size()) fail("invalid UTF-8 in a string");
      std::uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1f) : extra == 2 ? (c & 0x0f) : (c & 0x07);
      for (int j = 1; j <= extra; ++j) {
        const unsigned char d = static_cast<unsigned char>(s_[k_ + j]);
        if ((d & 0xc0) != 0x80) fail("invalid UTF-8 in a string");
        cp = (cp << 6) | (d & 0x3f);
      }
      if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp < 0xe000))) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
        fail("invalid UTF-8 in a string");
      out.append(s_, k_, static_cast<std::size_t>(extra) + 1);
      k_ += static_cast<std::size_t>(extra) + 1;
    }
  }
  std::uint32_t hex4() {
    if (k_ + 4 > s_.size()) fail("truncated \\u escape");
    std::uint32_t v = 0;
    for (int j = 0; j < 4; ++j) {
      const char h = s_[k_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<std::uint32_t>(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // The number grammar of RFC 8259 section 6, kept as written.
  JsonValue number() {
    JsonValue v = start(JsonValue::Type::Number);
    const std::size_t begin = k_;
    auto digits = [&] {
      const std::size_t from = k_;
      while (k_ < s_.size() && s_[k_] >= '0' && s_[k_] <= '9') ++k_;
      return k_ - from;
    };
    if (s_[k_] == '-') ++k_;
    if (k_ < s_.size() && s_[k_] == '0') ++k_;
    else if (digits() == 0) fail("malformed number");
    if (k_ < s_.size() && s_[k_] == '.') {
      ++k_;
      if (digits() == 0) fail("malformed number");
    }
    if (k_ < s_.size() && (s_[k_] == 'e' || s_[k_] == 'E')) {
      ++k_;
      if (k_ < s_.size() && (s_[k_] == '+' || s_[k_] == '-')) ++k_;
      if (digits() == 0) fail("malformed number");
    }
    v.text = s_.substr(begin, k_ - begin);
    return v;
  }

  const std::string& s_;
  std::shared_ptr<const std::string> source_;
  std::size_t k_ = 0, line_start_ = 0;
  int line_ = 1;
};

}  // namespace

const JsonValue* JsonValue::find(const std::string& key) const {
  if (type != Type::Object) return nullptr;
  for (const auto& m : members)
    if (m.first == key) return &m.second;
  return nullptr;
}

const JsonValue& JsonValue::at(const std::string& key) const {
  if (type != Type::Object) wrong_type(*this, key, "an object");
  const JsonValue* v = find(key);
  if (v == nullptr) throw Error(where() + ": missing field '" + key + "'");
  return *v;
}

const std::vector<JsonValue>& JsonValue::array(const std::string& what) const {
  if (type != Type::Array) wrong_type(*this, what, "an array");
  return items;
}

const std::string& JsonValue::string(const std::string& what) const {
  if (type != Type::String) wrong_type(*this, what, "a string");
  return text;
}

double JsonValue::number(const std::string& what) const {
  if (type != Type::Number) wrong_type(*this, what, "a number");
  errno = 0;
  const double d = std::strtod(text.c_str(), nullptr);
  if (!std::isfinite(d)) throw Error(where() + ": '" + what + "' is out of range: " + text);
  return d;
}

std::int64_t JsonValue::int64(const std::string& what) const {
  if (type != Type::Number) wrong_type(*this, what, "an integer");
  if (text.find_first_of(".eE") != std::string::npos) throw Error(where() + ": '" + what + "' must be an integer, got " + text);
  errno = 0;
  const long long v = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) throw Error(where() + ": '" + what + "' is out of range: " + text);
  return v;
}

std::uint64_t JsonValue::uint64(const std::string& what) const {
  if (type != Type::Number) wrong_type(*this, what, "an integer");
  if (text.find_first_of(".eE-") != std::string::npos) throw Error(where() + ": '" + what + "' must be a non-negative integer, got " + text);
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE) throw Error(where() + ": '" + what + "' is out of range: " + text);
  return v;
}

JsonValue parse_json(const std::string& text, const std::string& source, int first_line) {
  return Parser(text, std::make_shared<const std::string>(source), first_line).document();
}

}  // namespace faultline::nn
