#include "hwcfg/yaml_document.h"

#include <cstdio>
#include <map>
#include <sstream>
#include <string_view>

#include <yaml-cpp/eventhandler.h>

#include "models/error.h"

namespace faultline::hwcfg {
namespace {

std::string position(const std::string& source, const YAML::Mark& mark) {
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

void check_node(const YAML::Node& node, const std::string& source, int depth) {
  if (!node.IsMap() && !node.IsSequence()) return;
  if (depth > kMaxYamlDepth) throw Error(position(source, node.Mark()) + ": nested deeper than " + std::to_string(kMaxYamlDepth) + " levels");
  if (node.IsSequence()) {
    for (const auto& item : node) check_node(item, source, depth + 1);
    return;
  }
  std::map<std::string, YAML::Mark> seen;
  for (const auto& entry : node) {
    if (entry.first.IsScalar()) {
      const auto [it, fresh] = seen.emplace(entry.first.Scalar(), entry.first.Mark());
      if (!fresh)
        throw Error(position(source, entry.first.Mark()) + ": key '" + entry.first.Scalar() + "' repeated (first at line " +
                    std::to_string(it->second.line + 1) + ")");
    } else {
      check_node(entry.first, source, depth + 1);
    }
    check_node(entry.second, source, depth + 1);
  }
}

// yaml-cpp 0.7.0's LoadAll never returns on a ',' where a node of the document or of a block collection
// should start (",", "- a\n,", "\"x\" ,", "{} ,", "&a ,": found by fuzzing). Such a ',' is
// invalid YAML anyway (a plain scalar cannot start with ','); since load_yaml_document no longer
// calls LoadAll it cannot hang there, but the check stays for its clearer message: it is reported
// before yaml-cpp sees the text: outside quotes, comments, block scalars and [ ] / { } collections, a ',' that
// is not inside a plain scalar.
void reject_stray_commas(const std::string& text, const std::string& source) {
  // A carriage return without a line feed is a line break to YAML and to yaml-cpp, but yaml-cpp
  // 0.7.0 then never returns on some inputs ("- \r[\n,", found by fuzzing); nobody writes old
  // Mac line ends, so they are refused (\r\n is fine).
  for (std::size_t k = 0, line = 1; k < text.size(); ++k) {
    if (text[k] == '\n') ++line;
    if (text[k] == '\r' && (k + 1 == text.size() || text[k + 1] != '\n'))
      throw Error(source + ":" + std::to_string(line) + ": a carriage return without a line feed (save the file with \\n or \\r\\n line ends)");
    // YAML text is printable (YAML 1.2, c-printable): no control characters but tab and line
    // ends. yaml-cpp stops reading at a NUL and then hangs on what follows ("\0,", fuzzing).
    const unsigned char c = static_cast<unsigned char>(text[k]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof code, "0x%02x", c);
      throw Error(source + ":" + std::to_string(line) + ": control character " + code + " (YAML text must be printable)");
    }
  }
  int depth = 0;                  // [ ] / { } nesting
  int line = 1;
  std::size_t line_start = 0;
  bool in_plain = false;          // inside a plain scalar on this line (depth 0)
  int block_scalar_indent = -1;   // inside a | or > scalar: the indentation of its key's line
  int line_indent = 0;
  for (std::size_t k = 0; k < text.size(); ++k) {
    const char c = text[k];
    if (k == line_start) {
      line_indent = 0;
      while (k + line_indent < text.size() && text[k + line_indent] == ' ') ++line_indent;
      const std::size_t first = k + line_indent;
      const bool blank = first >= text.size() || text[first] == '\n' || text[first] == '\r';
      if (block_scalar_indent >= 0 && (blank || line_indent > block_scalar_indent)) {
        const std::size_t end = text.find('\n', k);
        if (end == std::string::npos) return;
        k = end;
        ++line;
        line_start = end + 1;
        continue;
      }
      block_scalar_indent = -1;
      in_plain = false;
    }
    const bool at_token_start = k == line_start || text[k - 1] == ' ' || text[k - 1] == '\t';
    if (c == '\n') {
      ++line;
      line_start = k + 1;
      in_plain = false;
    } else if (c == '#' && at_token_start) {
      while (k + 1 < text.size() && text[k + 1] != '\n') ++k;
    } else if ((c == '"' || c == '\'') && !in_plain) {
      // A quoted scalar, possibly over several lines; '' is a quote inside '...', \" inside "...".
      for (++k; k < text.size(); ++k) {
        if (text[k] == '\n') {
          ++line;
          line_start = k + 1;
        } else if (c == '"' && text[k] == '\\') {
          ++k;
        } else if (text[k] == c) {
          if (c == '\'' && k + 1 < text.size() && text[k + 1] == '\'') ++k;
          else break;
        }
      }
      if (k < text.size() && text[k] == '\n') { /* unterminated: yaml-cpp reports it */ }
    } else if ((c == '[' || c == '{') && !in_plain) {
      ++depth;
    } else if ((c == ']' || c == '}') && !in_plain) {
      if (depth > 0) --depth;
    } else if (depth == 0 && c == ',' && !in_plain) {
      throw Error(source + ":" + std::to_string(line) + ":" + std::to_string(k - line_start + 1) +
                  ": invalid YAML: ',' outside a [ ] or { } list (a value cannot start with ','; quote it)");
    } else if (depth == 0 && !in_plain && (c == '|' || c == '>') && at_token_start) {
      block_scalar_indent = line_indent;
    } else if (depth == 0 && c == ':' && (k + 1 == text.size() || text[k + 1] == ' ' || text[k + 1] == '\n' || text[k + 1] == '\r')) {
      in_plain = false;  // "key: value": the value is a new token
    } else if (depth == 0 && !in_plain && at_token_start && (c == '&' || c == '!' || c == '*')) {
      // An anchor, tag or alias: its name ends at a space or a flow indicator (YAML 1.2 ns-anchor-char).
      while (k + 1 < text.size() && std::string_view(" \t\r\n,[]{}").find(text[k + 1]) == std::string_view::npos) ++k;
    } else if (depth == 0 && !in_plain && c != ' ' && c != '\t' && c != '\r' && !(c == '-' && (k + 1 == text.size() || text[k + 1] == ' ' || text[k + 1] == '\n')) &&
               !(c == '?' && (k + 1 == text.size() || text[k + 1] == ' '))) {
      in_plain = true;
    }
  }
}

// Records where each document starts and ignores its content (the node comes from YAML::Load).
struct DocumentStarts : YAML::EventHandler {
  YAML::Mark last = YAML::Mark::null_mark();
  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

YAML::Node load_yaml_document(const std::string& text, const std::string& source) {
  reject_stray_commas(text, source);
  YAML::Node document;
  try {
    // Never YAML::LoadAll: in yaml-cpp 0.7.0 its loop over documents does not end when the parser
    // reports a document without consuming a token (jbeder/yaml-cpp#1040, fixed upstream in
    // #1319 after 0.7.0), and each turn allocates: a hang that eats memory. YAML::Load reads one
    // document, and the second Parser call below only asks whether anything follows it, so the
    // number of parser calls is bounded whatever the text holds.
    document = YAML::Load(text);
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    DocumentStarts starts;
    if (parser.HandleNextDocument(starts) && parser.HandleNextDocument(starts))
      throw Error(position(source, starts.last) +
                  ": a second YAML document or text after the end of the first (only one is read; remove the '---' or the stray text and what follows)");
  } catch (const YAML::Exception& e) {
    throw Error(position(source, e.mark) + ": invalid YAML: " + e.msg);
  }
  if (document.IsNull()) return YAML::Node();
  check_node(document, source, 1);
  return document;
}

}  // namespace faultline::hwcfg
