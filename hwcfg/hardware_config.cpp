#include "hwcfg/hardware_config.h"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "hwcfg/yaml_document.h"
#include "models/error.h"
#include "models/files.h"
#include "models/substrate.h"

namespace faultline::hwcfg {
namespace {

std::string at(const std::string& source, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return source + " (override)";
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

void expect_map(const std::string& source, const YAML::Node& node, const std::string& field) {
  if (!node.IsMap()) throw Error(at(source, node) + ": '" + field + "' must be a mapping");
}

std::string join(const std::vector<std::string>& items) {
  std::string list;
  for (const auto& k : items) list += (list.empty() ? "" : ", ") + k;
  return list;
}

void reject_unknown(const std::string& source, const YAML::Node& node, const std::string& field, const std::vector<std::string>& known) {
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::vector<std::string> sorted = known;
      std::sort(sorted.begin(), sorted.end());
      throw Error(at(source, entry.first) + ": unknown field '" + (field.empty() ? key : field + "." + key) + "' (known: " + join(sorted) + ")");
    }
  }
}

std::string get_string(const std::string& source, const YAML::Node& node, const std::string& field) {
  if (!node.IsScalar()) throw Error(at(source, node) + ": '" + field + "' must be a string");
  return node.as<std::string>();
}

double get_number(const std::string& source, const YAML::Node& node, const std::string& field) {
  if (!node.IsScalar()) throw Error(at(source, node) + ": '" + field + "' must be a number");
  try {
    return node.as<double>();
  } catch (const YAML::Exception&) {
    throw Error(at(source, node) + ": '" + field + "' must be a number, got '" + node.Scalar() + "'");
  }
}

// Reads the parameters `specs` declare from the mapping `unit` (`extra` keys are allowed too).
models::Params read_params(const std::string& source, const YAML::Node& unit, const std::string& field,
                           const std::vector<models::ParamSpec>& specs, const std::vector<std::string>& extra) {
  std::vector<std::string> known = extra;
  for (const auto& p : specs) known.push_back(p.name);
  reject_unknown(source, unit, field, known);
  models::Params params = models::default_params(specs);
  for (const auto& spec : specs) {
    const YAML::Node value = unit[spec.name];
    if (!value) continue;
    const std::string name = field + "." + spec.name;
    if (spec.type == models::ParamSpec::Type::Choice) {
      const std::string v = get_string(source, value, name);
      if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end())
        throw Error(at(source, value) + ": '" + name + "': must be one of " + join(spec.choices) + ", got '" + v + "'");
      params.set_choice(spec.name, v);
      continue;
    }
    double v;
    if (spec.type == models::ParamSpec::Type::Bool) {
      bool b;
      if (!value.IsScalar() || !YAML::convert<bool>::decode(value, b)) throw Error(at(source, value) + ": '" + name + "' must be true or false");
      v = b ? 1 : 0;
    } else {
      v = get_number(source, value, name);
    }
    const std::string problem = models::check_number(spec, v);
    if (!problem.empty()) throw Error(at(source, value) + ": '" + name + "': " + problem + ", got " + value.Scalar());
    params.set_number(spec.name, v);
  }
  return params;
}

// Applies "a.b.c=value" to the YAML tree (maps are created as needed; numeric parts index lists).
void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("override '" + assignment + "': expected PATH=VALUE");
  const std::string path = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  std::vector<std::string> parts;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty()) throw Error("override '" + assignment + "': empty path component");
    parts.push_back(part);
  }
  std::vector<YAML::Node> chain = {root};
  for (std::size_t k = 0; k + 1 < parts.size(); ++k) {
    YAML::Node cur = chain.back();
    const bool index = !parts[k].empty() && std::all_of(parts[k].begin(), parts[k].end(), ::isdigit);
    if (index && cur.IsSequence()) {
      const std::size_t i = std::stoul(parts[k]);
      if (i >= cur.size()) throw Error("override '" + assignment + "': '" + parts[k] + "' is past the end of the list");
      chain.push_back(cur[i]);
    } else {
      if (!cur.IsMap() && cur.IsDefined() && !cur.IsNull()) throw Error("override '" + assignment + "': '" + parts[k] + "' is not inside a mapping");
      chain.push_back(cur[parts[k]]);
    }
  }
  YAML::Node leaf = chain.back();
  const std::string& last = parts.back();
  // A constructed scalar has no position, so errors about it say "(--set)" instead of a line.
  const YAML::Node parsed(value);
  if (leaf.IsSequence() && std::all_of(last.begin(), last.end(), ::isdigit)) {
    const std::size_t i = std::stoul(last);
    if (i >= leaf.size()) throw Error("override '" + assignment + "': '" + last + "' is past the end of the list");
    leaf[i] = parsed;
  } else {
    leaf[last] = parsed;
  }
}

// The registered kinds that declare a capability, for messages.
std::vector<std::string> kinds_with(bool models::KindCapabilities::*capability) {
  std::vector<std::string> kinds;
  for (const auto& k : models::registered_substrates())
    if (models::find_substrate_kind(k)->capabilities.*capability) kinds.push_back(k);
  return kinds;
}

}  // namespace

std::string glob_literal(const std::string& name) {
  std::string out;
  for (char c : name) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}


const HardwareUnit* HardwareConfig::unit_for(const std::string& layer_name, const std::string& op_type) const {
  for (const auto& m : mapping) {
    if (!m.op.empty() && m.op != op_type) continue;
    if (fnmatch(m.layers.c_str(), layer_name.c_str(), 0) != 0) continue;
    for (const auto& u : units)
      if (u.name == m.unit) return &u;
  }
  return nullptr;
}

namespace {

// A string as a YAML double-quoted scalar that reads back as the same bytes: quotes, backslashes
// and control characters escaped (found by fuzzing: a pattern holding a quote broke the file).
std::string yaml_quoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Plain when that reads back unchanged (names as people write them), quoted otherwise.
std::string yaml_scalar(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' || ch == ':';
  }) && std::isalpha(static_cast<unsigned char>(s[0])) && s.back() != ':';
  return plain ? s : yaml_quoted(s);
}

}  // namespace

std::string HardwareConfig::to_yaml() const {
  std::ostringstream out;
  out.precision(10);
  out << "name: " << yaml_scalar(name) << "\n";
  if (!description.empty()) out << "description: " << yaml_quoted(description) << "\n";
  out << (units.empty() ? "units: {}\n" : "units:\n");
  for (const auto& u : units) {
    out << "  " << yaml_scalar(u.name) << ":\n    kind: " << u.kind << "\n";
    if (!u.impl.empty()) out << "    impl: " << u.impl << "  # what runs it at --level rtl\n";
    if (!u.registers.empty()) {
      out << "    registers:\n";
      for (const auto& [name, value] : u.registers) out << "      " << yaml_scalar(name) << ": " << value << "\n";
    }
    const models::SubstrateKind* kind = models::find_substrate_kind(u.kind);
    const auto write = [&](const std::vector<models::ParamSpec>& specs, const models::Params& values, const std::string& indent) {
      for (const auto& spec : specs) {
        out << indent << spec.name << ": ";
        if (spec.type == models::ParamSpec::Type::Choice) out << values.choice(spec.name);
        else if (spec.type == models::ParamSpec::Type::Bool) out << (values.flag(spec.name) ? "true" : "false");
        else out << values.number(spec.name);
        out << "  # " << (spec.unit.empty() ? "" : "[" + spec.unit + "] ") << spec.doc << "\n";
      }
    };
    write(kind->params, u.params, "    ");
    if (!kind->timing.empty()) {
      out << "    timing:\n";
      write(kind->timing, u.timing, "      ");
    }
    if (!kind->energy.empty()) {
      out << "    energy:\n";
      write(kind->energy, u.energy, "      ");
    }
    if (!u.schedule.empty()) {
      out << "    schedule:\n";
      for (const auto& [layer, knobs] : u.schedule) {
        out << "      " << yaml_scalar(layer) << ":\n";
        write(kind->schedule, knobs, "        ");
      }
    }
  }
  out << "mapping:\n";
  for (const auto& m : mapping) {
    out << "  - layers: " << yaml_quoted(m.layers) << "\n";
    if (!m.op.empty()) out << "    op: " << m.op << "\n";
    out << "    unit: " << yaml_scalar(m.unit) << "\n";
  }
  if (mapping.empty()) out << "  []  # every layer runs ideal\n";
  if (!noise_sites.empty()) {
    out << "noise:\n";
    for (const auto& n : noise_sites) {
      out << "  - after: " << yaml_quoted(n.nodes) << "\n";
      if (!n.op.empty()) out << "    op: " << yaml_scalar(n.op) << "\n";
      out << "    additive: " << n.sigma_add << "\n    multiplicative: " << n.sigma_mul << "\n";
    }
  }
  return out.str();
}

models::Params HardwareUnit::params_for(const std::string& layer) const {
  models::Params p = params;
  const models::SubstrateKind* kind = models::find_substrate_kind(this->kind);
  if (!kind || kind->schedule.empty()) return p;
  const auto it = schedule.find(layer);
  const models::Params knobs = it != schedule.end() ? it->second : models::default_params(kind->schedule);
  for (const auto& [name, value] : knobs.numbers()) p.set_number(name, value);
  for (const auto& [name, value] : knobs.choices()) p.set_choice(name, value);
  return p;
}

HardwareConfig parse_hardware_config(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  YAML::Node root = load_yaml_document(text, source);
  if (!root.IsMap()) throw Error(source + ": a hardware description must be a YAML mapping");
  for (const auto& o : overrides) apply_override(root, o);
  HardwareConfig config;
  config.source = source;
  try {
    reject_unknown(source, root, "", {"name", "description", "units", "mapping", "noise"});
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
        if (!entry.second["kind"]) throw Error(at(source, entry.second) + ": missing field '" + field + ".kind'");
        unit.kind = get_string(source, entry.second["kind"], field + ".kind");
        const models::SubstrateKind* kind = models::find_substrate_kind(unit.kind);
        if (kind == nullptr)
          throw Error(at(source, entry.second["kind"]) + ": '" + field + ".kind': unknown kind '" + unit.kind + "' (known: " + join(models::registered_substrates()) + ")");
        std::vector<std::string> extra = {"kind"};
        if (kind->capabilities.rtl_binding) {  // (elsewhere `impl` and `registers` are rejected below, with a reason)
          extra.push_back("impl");
          extra.push_back("registers");
        }
        if (entry.second["impl"]) {
          unit.impl = get_string(source, entry.second["impl"], field + ".impl");
          unit.impl_at = at(source, entry.second["impl"]);
          const bool rtl = unit.impl.rfind("rtl:", 0) == 0 && unit.impl.size() > 4 &&
                           std::all_of(unit.impl.begin() + 4, unit.impl.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; });
          if (!rtl)
            throw Error(at(source, entry.second["impl"]) + ": '" + field + ".impl': must be rtl:NAME (an RTL module, `faultline cosim --list`), got '" + unit.impl + "'");
          if (!kind->capabilities.rtl_binding)
            throw Error(at(source, entry.second["impl"]) + ": '" + field + ".impl': kind " + unit.kind +
                        " has no RTL binding (kinds that run on RTL matrix-vector units: " + join(kinds_with(&models::KindCapabilities::rtl_binding)) + ")");
        }
        if (const YAML::Node regs = entry.second["registers"]) {
          const std::string rfield = field + ".registers";
          if (!kind->capabilities.rtl_binding)
            throw Error(at(source, regs) + ": '" + rfield + "': kind " + unit.kind + " runs on no RTL module, so it has no registers");
          if (unit.impl.empty()) throw Error(at(source, regs) + ": '" + rfield + "': registers belong to an RTL module; give 'impl: rtl:NAME' too");
          if (!regs.IsMap() && !regs.IsNull()) throw Error(at(source, regs) + ": '" + rfield + "' must be a mapping {register: value}");
          unit.registers_at = at(source, regs);
          for (const auto& reg : regs) {
            const std::string name = reg.first.as<std::string>();
            const std::string rname = rfield + "." + name;
            if (!reg.second.IsScalar()) throw Error(at(source, reg.second) + ": '" + rname + "' must be a whole number");
            const std::string text = reg.second.Scalar();
            // A register value is an unsigned whole number (decimal or 0x hex) below 2^32.
            long long value = -1;
            try {
              std::size_t used = 0;
              const unsigned long long v = std::stoull(text, &used, 0);
              if (used == text.size() && text.find('-') == std::string::npos && v <= 0xFFFFFFFFull) value = static_cast<long long>(v);
            } catch (const std::exception&) {
            }
            if (value < 0)
              throw Error(at(source, reg.second) + ": '" + rname + "': a register value is a whole number in [0, 2^32 - 1], got '" + text + "'");
            unit.registers[name] = value;
          }
        }
        for (const char* section : {"timing", "energy"}) {
          const std::vector<models::ParamSpec>& specs = std::string(section) == "timing" ? kind->timing : kind->energy;
          const YAML::Node node = entry.second[section];
          const std::string sfield = field + "." + section;
          if (!specs.empty()) extra.push_back(section);
          if (node && specs.empty())
            throw Error(at(source, node) + ": '" + sfield + "': kind '" + unit.kind + "' has no cycle-level model, so no " + section + " parameters");
          if (node) expect_map(source, node, sfield);
          (std::string(section) == "timing" ? unit.timing : unit.energy) =
              node ? read_params(source, node, sfield, specs, {}) : models::default_params(specs);
        }
        if (!kind->schedule.empty()) extra.push_back("schedule");
        if (const YAML::Node sched = entry.second["schedule"]) {
          const std::string sfield = field + ".schedule";
          if (kind->schedule.empty()) throw Error(at(source, sched) + ": '" + sfield + "': kind '" + unit.kind + "' has no per-layer schedule");
          if (!sched.IsMap() && !sched.IsNull()) throw Error(at(source, sched) + ": '" + sfield + "' must be a mapping {layer: {knob: value}}");
          unit.schedule_at = at(source, sched);
          for (const auto& layer : sched) {
            const std::string lname = layer.first.as<std::string>();
            const std::string lfield = sfield + "." + lname;
            expect_map(source, layer.second, lfield);
            unit.schedule[lname] = read_params(source, layer.second, lfield, kind->schedule, {});
          }
        }
        unit.params = read_params(source, entry.second, field, kind->params, extra);
        // Build once to let the kind check combinations of values (e.g. g_max > g_min).
        try {
          (void)kind->create(unit.params);
        } catch (const Error& e) {
          throw Error(at(source, entry.second) + ": '" + field + "': " + e.what());
        }
        for (const auto& [lname, knobs] : unit.schedule) try {
            (void)kind->create(unit.params_for(lname));
          } catch (const Error& e) {
            throw Error(at(source, entry.second["schedule"][lname]) + ": '" + field + ".schedule." + lname + "': " + e.what());
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
    if (root["noise"]) {
      const YAML::Node noise = root["noise"];
      if (!noise.IsSequence()) throw Error(at(source, noise) + ": 'noise' must be a list");
      for (std::size_t k = 0; k < noise.size(); ++k) {
        const YAML::Node item = noise[k];
        const std::string field = "noise[" + std::to_string(k) + "]";
        expect_map(source, item, field);
        reject_unknown(source, item, field, {"after", "op", "additive", "multiplicative"});
        NoiseSite site;
        if (item["after"]) site.nodes = get_string(source, item["after"], field + ".after");
        if (item["op"]) site.op = get_string(source, item["op"], field + ".op");
        for (const char* key : {"additive", "multiplicative"}) {
          if (!item[key]) continue;
          const double v = get_number(source, item[key], field + "." + key);
          if (!(v >= 0 && v <= 1e10)) throw Error(at(source, item[key]) + ": '" + field + "." + key + "': must be in [0, 1e10], got " + item[key].Scalar());
          (std::string(key) == "additive" ? site.sigma_add : site.sigma_mul) = static_cast<float>(v);
        }
        config.noise_sites.push_back(site);
      }
    }
  } catch (const YAML::Exception& e) {
    throw Error(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return config;
}

std::string substrate_kinds_markdown() {
  std::ostringstream out;
  for (const auto& name : models::registered_substrates()) {
    const models::SubstrateKind* kind = models::find_substrate_kind(name);
    out << "### `" << name << "`\n\n" << kind->doc << "\n\n";
    const models::KindCapabilities& c = kind->capabilities;
    out << "Levels: functional" << (c.cycle_model ? ", cycle (`--level cycle`)" : "") << (c.rtl_binding ? ", RTL (`impl: rtl:NAME`, `--level rtl`)" : "")
        << (c.training_noise ? "; a noise model for noise-aware training (`train --noise`)" : "") << ".\n\n";
    if (kind->params.empty()) {
      out << "No parameters.\n\n";
      continue;
    }
    const auto table = [&](const std::vector<models::ParamSpec>& specs) {
    out << "| parameter | type | default | valid | unit | meaning |\n| --- | --- | --- | --- | --- | --- |\n";
    for (const auto& p : specs) {
      std::string type, def, valid;
      std::ostringstream d, lo, hi;
      d << p.fallback;
      lo << p.min;
      hi << p.max;
      switch (p.type) {
        case models::ParamSpec::Type::Number: type = "number"; def = d.str(); valid = "[" + lo.str() + ", " + hi.str() + "]"; break;
        case models::ParamSpec::Type::Integer: type = "integer"; def = d.str(); valid = "[" + lo.str() + ", " + hi.str() + "]"; break;
        case models::ParamSpec::Type::Bool: type = "bool"; def = p.fallback != 0 ? "true" : "false"; valid = "true, false"; break;
        case models::ParamSpec::Type::Choice: type = "choice"; def = p.choices.at(0); valid = join(p.choices); break;
      }
      out << "| `" << p.name << "` | " << type << " | " << def << " | " << valid << " | " << p.unit << " | " << p.doc << " |\n";
    }
    out << "\n";
    };
    table(kind->params);
    if (!kind->timing.empty()) {
      out << "Cycle level, `timing:` (latencies in cycles of `clock_mhz`):\n\n";
      table(kind->timing);
    }
    if (!kind->energy.empty()) {
      out << "Cycle level, `energy:`:\n\n";
      table(kind->energy);
    }
    if (!kind->schedule.empty()) {
      out << "Per layer, `schedule: {LAYER: {...}}` (`faultline tune` writes these):\n\n";
      table(kind->schedule);
    }
  }
  return out.str();
}

std::string hardware_preset_dir() {
  if (const char* dir = std::getenv("FAULTLINE_HWCFG_DIR")) return dir;
  return FAULTLINE_HWCFG_DIR;
}

std::vector<std::string> hardware_presets() {
  std::vector<std::string> names;
  if (std::filesystem::is_directory(hardware_preset_dir()))
    for (const auto& e : std::filesystem::directory_iterator(hardware_preset_dir()))
      if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

HardwareConfig load_hardware_config(const std::string& spec, const std::vector<std::string>& overrides) {
  std::string path = spec;
  const bool is_name = spec.find('/') == std::string::npos && spec.find('.') == std::string::npos;
  if (is_name && !std::filesystem::exists(spec)) {
    path = hardware_preset_dir() + "/" + spec + ".yaml";
    if (!std::filesystem::is_regular_file(path))
      throw Error(spec + ": no such file or hardware preset (presets: " + join(hardware_presets()) + ")");
  }
  return parse_hardware_config(read_input_file(path), path, overrides);
}

void require_training_noise(const HardwareConfig& config) {
  const std::vector<std::string> noise_kinds = kinds_with(&models::KindCapabilities::training_noise);
  for (const auto& u : config.units)
    if (!models::find_substrate_kind(u.kind)->capabilities.training_noise)
      throw Error(config.source + ": unit '" + u.name + "' is of kind " + u.kind + ", not noise (" + join(noise_kinds) + "); a hardware description, not noise");
}

}  // namespace faultline::hwcfg
