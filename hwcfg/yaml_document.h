// One YAML (or JSON) document, read strictly: yaml-cpp on its own keeps the first of two equal
// keys and ignores a second document, both of which would silently drop what the user wrote.
// Used for hardware descriptions and, since JSON is YAML, for the JSON files Faultline reads
// back (trace sidecars, sweep logs).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace faultline::hwcfg {

// Deepest nesting of mappings and sequences accepted: far above any real file, and low enough
// that no reader recurses far.
constexpr int kMaxYamlDepth = 64;

// Parses `text` as exactly one document. Throws faultline::Error "SOURCE:LINE:COL: ..." for
// invalid YAML, a repeated key in any mapping (naming the line of the first), a second document,
// or nesting deeper than kMaxYamlDepth. An empty text is a null node.
YAML::Node load_yaml_document(const std::string& text, const std::string& source);

}  // namespace faultline::hwcfg
