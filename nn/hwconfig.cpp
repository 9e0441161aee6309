#include "nn/hwconfig.h"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "models/substrate.h"

namespace faultline::nn {
namespace {

std::string at(const std::string& source, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

void expect_map(const std::string& source, const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) throw Error(at(source, node) + ": '" + field + "' must be a mapping");
}

void reject_unknown(const std::string& source, const YAML::Node& node, const std::string& field, const std::set<std::string>& known) {
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error(at(source, entry.first) + ": unknown field '" + (field.empty() ? key : field + "." + key) + "' (known: " + list + ")");
    }
  }
}

std::string get_string(const std::string& source, const YAML::Node& node, const std::string& field) {
  if (!node.IsScalar()) throw Error(at(source, node) + ": '" + field + "' must be a string");
  return node.as<std::string>();
}

}  // namespace

const HardwareUnit* HardwareConfig::unit_for(const LinearLayer& layer) const {
  for (const auto& m : mapping) {
    if (!m.op.empty() && m.op != layer.op_type()) continue;
    if (fnmatch(m.layers.c_str(), layer.name().c_str(), 0) != 0) continue;
    for (const auto& u : units)
      if (u.name == m.unit) return &u;
  }
  return nullptr;
}

void HardwareConfig::program(Graph& graph, const models::ProgramContext& context) const {
  graph.program([this](const LinearLayer& layer) {
    const HardwareUnit* unit = unit_for(layer);
    return unit ? unit->kind : std::string("ideal");
  }, context);
}

HardwareConfig parse_hardware_config(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw Error(source + ": a hardware description must be a YAML mapping");
  HardwareConfig config;
  config.source = source;
  try {
    reject_unknown(source, root, "", {"name", "description", "units", "mapping"});
    if (!root["name"]) throw Error(source + ": missing field 'name'");
    config.name = get_string(source, root["name"], "name");
    if (root["description"]) config.description = get_string(source, root["description"], "description");
    if (root["units"]) {
      const YAML::Node units = root["units"];
      expect_map(source, units, "units");
      for (const auto& entry : units) {
        HardwareUnit unit;
        unit.name = entry.first.as<std::string>();
        const std::string field = "units." + unit.name;
        expect_map(source, entry.second, field);
        reject_unknown(source, entry.second, field, {"kind"});
        if (!entry.second["kind"]) throw Error(at(source, entry.second) + ": missing field '" + field + ".kind'");
        unit.kind = get_string(source, entry.second["kind"], field + ".kind");
        if (!models::substrate_registered(unit.kind)) {
          std::string known;
          for (const auto& k : models::registered_substrates()) known += (known.empty() ? "" : ", ") + k;
          throw Error(at(source, entry.second["kind"]) + ": '" + field + ".kind': unknown kind '" + unit.kind + "' (known: " + known + ")");
        }
        config.units.push_back(unit);
      }
    }
    if (root["mapping"]) {
      const YAML::Node mapping = root["mapping"];
      if (!mapping.IsSequence()) throw Error(at(source, mapping) + ": 'mapping' must be a list");
      for (std::size_t k = 0; k < mapping.size(); ++k) {
        const YAML::Node item = mapping[k];
        const std::string field = "mapping[" + std::to_string(k) + "]";
        expect_map(source, item, field);
        reject_unknown(source, item, field, {"layers", "op", "unit"});
        LayerMapping m;
        if (item["layers"]) m.layers = get_string(source, item["layers"], field + ".layers");
        if (item["op"]) {
          m.op = get_string(source, item["op"], field + ".op");
          if (m.op != "Conv" && m.op != "Gemm" && m.op != "MatMul")
            throw Error(at(source, item["op"]) + ": '" + field + ".op': must be Conv, Gemm or MatMul, got '" + m.op + "'");
        }
        if (!item["unit"]) throw Error(at(source, item) + ": missing field '" + field + ".unit'");
        m.unit = get_string(source, item["unit"], field + ".unit");
        bool found = false;
        for (const auto& u : config.units) found = found || u.name == m.unit;
        if (!found) throw Error(at(source, item["unit"]) + ": '" + field + ".unit': no unit named '" + m.unit + "'");
        config.mapping.push_back(m);
      }
    }
  } catch (const YAML::Exception& e) {
    throw Error(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return config;
}

std::string hardware_preset_dir() {
  if (const char* dir = std::getenv("FAULTLINE_HWCFG_DIR")) return dir;
  return FAULTLINE_HWCFG_DIR;
}

HardwareConfig load_hardware_config(const std::string& spec) {
  std::string path = spec;
  const bool is_name = spec.find('/') == std::string::npos && spec.find('.') == std::string::npos;
  if (is_name && !std::filesystem::exists(spec)) {
    path = hardware_preset_dir() + "/" + spec + ".yaml";
    if (!std::filesystem::is_regular_file(path)) {
      std::string known;
      if (std::filesystem::is_directory(hardware_preset_dir()))
        for (const auto& e : std::filesystem::directory_iterator(hardware_preset_dir()))
          if (e.path().extension() == ".yaml") known += (known.empty() ? "" : ", ") + e.path().stem().string();
      throw Error(spec + ": no such file or hardware preset (presets: " + known + ")");
    }
  }
  if (!std::filesystem::is_regular_file(path)) throw Error(path + ": no such file");
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_hardware_config(buffer.str(), path);
}

}  // namespace faultline::nn
