#include "nn/graph.h"

#include <fnmatch.h>

#include <algorithm>
#include <atomic>
#include <queue>
#include <set>
#include <stdexcept>
#include <utility>

#include "models/noise.h"
#include "models/substrate.h"

namespace faultline::nn {

void Graph::add_input(ValueInfo info) { inputs_.push_back(std::move(info)); }
void Graph::add_constant(const std::string& name, Tensor value) {
  constants_[name] = std::move(value);
  initializers_.insert(name);
}
void Graph::add_node(NodeSpec spec) { pending_.push_back(std::move(spec)); }
void Graph::add_output(const std::string& name) { outputs_.push_back(name); }

void Graph::finalize() {
  const std::string where = source.empty() ? std::string("graph") : source;
  // Who produces each value.
  std::map<std::string, int> producer;
  std::set<std::string> graph_inputs;
  for (const auto& in : inputs_) {
    if (!graph_inputs.insert(in.name).second) throw Error(where + ": input '" + in.name + "' is declared twice");
  }
  for (std::size_t n = 0; n < pending_.size(); ++n) {
    for (const auto& out : pending_[n].outputs) {
      if (out.empty()) continue;
      if (producer.count(out) || graph_inputs.count(out) || constants_.count(out))
        throw Error(where + ": value '" + out + "' is produced more than once (" + pending_[n].where() + ")");
      producer[out] = static_cast<int>(n);
    }
  }
  // Kahn's algorithm; ties keep file order so that execution order is stable.
  std::vector<int> missing(pending_.size(), 0);
  std::vector<std::vector<int>> readers(pending_.size());
  for (std::size_t n = 0; n < pending_.size(); ++n) {
    std::set<int> deps;
    for (const auto& in : pending_[n].inputs) {
      if (in.empty() || graph_inputs.count(in) || constants_.count(in)) continue;
      auto it = producer.find(in);
      if (it == producer.end()) throw Error(where + ": " + pending_[n].where() + " reads '" + in + "', which no node, input or initializer provides");
      deps.insert(it->second);
    }
    missing[n] = static_cast<int>(deps.size());
    for (int d : deps) readers[d].push_back(static_cast<int>(n));
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (std::size_t n = 0; n < pending_.size(); ++n) if (missing[n] == 0) ready.push(static_cast<int>(n));
  std::vector<int> order;
  while (!ready.empty()) {
    const int n = ready.top();
    ready.pop();
    order.push_back(n);
    for (int r : readers[n]) if (--missing[r] == 0) ready.push(r);
  }
  if (order.size() != pending_.size()) throw Error(where + ": the graph has a cycle");

  // Create operators in order, folding nodes whose inputs are all constants.
  std::map<std::string, int> slot_of;
  for (const auto& in : inputs_) {
    slot_of[in.name] = slot_count_;
    input_slots_.push_back(slot_count_++);
  }
  for (int n : order) {
    NodeSpec spec = std::move(pending_[n]);
    if (spec.name.empty()) spec.name = spec.outputs.empty() ? spec.op_type : spec.outputs[0];
    bool all_constant = true;
    spec.constant_inputs.assign(spec.inputs.size(), nullptr);
    for (std::size_t k = 0; k < spec.inputs.size(); ++k) {
      if (spec.inputs[k].empty()) continue;
      auto c = constants_.find(spec.inputs[k]);
      if (c != constants_.end()) spec.constant_inputs[k] = &c->second;
      else all_constant = false;
    }
    std::unique_ptr<Op> op = create_op(spec);
    if (all_constant) {
      for (const auto& in : spec.inputs)
        if (initializers_.count(in)) folded_reads_.insert(in);
      if (LinearLayer* layer = op->linear()) layer->program_exact({});
      std::vector<const Tensor*> args(spec.constant_inputs.begin(), spec.constant_inputs.end());
      std::vector<Tensor> results(spec.outputs.size());
      op->run(args, results, RunContext{});
      for (std::size_t k = 0; k < spec.outputs.size(); ++k)
        if (!spec.outputs[k].empty()) constants_[spec.outputs[k]] = std::move(results[k]);
      continue;
    }
    Step step;
    for (std::size_t k = 0; k < spec.inputs.size(); ++k) {
      Ref ref;
      if (spec.constant_inputs[k]) ref.constant = spec.constant_inputs[k];
      else if (!spec.inputs[k].empty()) ref.slot = slot_of.at(spec.inputs[k]);
      step.inputs.push_back(ref);
    }
    for (const auto& out : spec.outputs) {
      if (out.empty()) { step.output_slots.push_back(-1); continue; }
      slot_of[out] = slot_count_;
      step.output_slots.push_back(slot_count_++);
    }
    if (LinearLayer* layer = op->linear()) {
      layer->set_index(static_cast<int>(layers_.size()));
      layers_.push_back(layer);
    }
    step.spec = std::move(spec);
    step.op = std::move(op);
    steps_.push_back(std::move(step));
  }
  pending_.clear();
  for (const auto& name : outputs_) {
    Ref ref;
    auto c = constants_.find(name);
    if (c != constants_.end()) ref.constant = &c->second;
    else if (slot_of.count(name)) ref.slot = slot_of[name];
    else throw Error(where + ": graph output '" + name + "' is not produced by any node");
    output_refs_.push_back(ref);
  }
  // Free each intermediate value after its last reader (graph outputs are kept).
  std::vector<int> last_reader(static_cast<std::size_t>(slot_count_), -1);
  for (std::size_t s = 0; s < steps_.size(); ++s)
    for (const Ref& r : steps_[s].inputs) if (r.slot >= 0) last_reader[r.slot] = static_cast<int>(s);
  for (const Ref& r : output_refs_) if (r.slot >= 0) last_reader[r.slot] = -2;
  for (int slot = 0; slot < slot_count_; ++slot)
    if (last_reader[slot] >= 0) steps_[last_reader[slot]].release.push_back(slot);
  find_parameters();
  finalized_ = true;
}

void Graph::find_parameters() {
  std::map<const Tensor*, std::string> name_of;
  for (const auto& [name, value] : constants_) name_of[&value] = name;
  slot_requires_grad_.assign(static_cast<std::size_t>(slot_count_), false);
  std::set<std::string> frozen;
  for (const Step& step : steps_) {
    bool requires = false;
    for (std::size_t k = 0; k < step.inputs.size(); ++k) {
      if (!step.op->differentiable_input(k)) continue;
      const Ref& r = step.inputs[k];
      if (r.slot >= 0) {
        requires = requires || slot_requires_grad_[r.slot];
      } else if (r.constant != nullptr && r.constant->dtype() == DType::Float32) {
        const std::string& name = name_of.at(r.constant);
        if (!initializers_.count(name)) continue;
        if (folded_reads_.count(name)) {
          frozen.insert(name);
          continue;
        }
        if (!parameter_index_.count(r.constant)) {
          parameter_index_[r.constant] = static_cast<int>(parameters_.size());
          parameters_.push_back(name);
        }
        requires = true;
      }
    }
    for (int slot : step.output_slots)
      if (slot >= 0) slot_requires_grad_[slot] = requires;
  }
  frozen_.assign(frozen.begin(), frozen.end());
}

const Tensor& Graph::parameter(const std::string& name) const {
  auto it = constants_.find(name);
  if (it == constants_.end()) throw std::logic_error("Graph::parameter: no initializer '" + name + "'");
  return it->second;
}

Tensor& Graph::parameter(const std::string& name) { return const_cast<Tensor&>(std::as_const(*this).parameter(name)); }

void Graph::collect_layers() {
  layers_.clear();
  for (Step& step : steps_)
    if (LinearLayer* layer = step.op->linear()) {
      layer->set_index(static_cast<int>(layers_.size()));
      layers_.push_back(layer);
    }
}

void Graph::parameters_changed() {
  for (Step& step : steps_) {
    bool reads_parameter = false;
    for (const Ref& r : step.inputs) reads_parameter = reads_parameter || (r.constant && parameter_index_.count(r.constant));
    if (reads_parameter && step.op->linear() != nullptr) step.op = create_op(step.spec);
  }
  collect_layers();
}

std::vector<std::size_t> Graph::steps_of(const std::string& op_type) const {
  std::vector<std::size_t> out;
  for (std::size_t s = 0; s < steps_.size(); ++s)
    if (steps_[s].spec.op_type == op_type) out.push_back(s);
  return out;
}

const Tensor* Graph::step_input(const Tape& tape, std::size_t step, std::size_t k) const {
  const Ref& r = steps_.at(step).inputs.at(k);
  return r.constant ? r.constant : (r.slot >= 0 ? &tape.slots[static_cast<std::size_t>(r.slot)] : nullptr);
}

std::vector<Tensor> Graph::run_recorded(std::vector<Tensor> inputs, const RunContext& context, Tape& tape) const {
  static std::atomic<std::uint64_t> passes{0};
  RunContext recorded = context;
  recorded.pass = ++passes;
  return execute(std::move(inputs), recorded, &tape);
}

void Graph::backward(const Tape& tape, const std::vector<Tensor>& output_grads, std::vector<Tensor>& grads) const {
  grads.resize(parameters_.size());
  std::vector<Tensor> g(static_cast<std::size_t>(slot_count_));
  const auto accumulate = [](Tensor& into, Tensor value, const std::string& where) {
    if (into.empty() && into.numel() == 0 && into.float_storage().empty()) {
      into = std::move(value);
      return;
    }
    if (into.shape() != value.shape())
      throw std::logic_error(where + ": gradient of shape " + shape_string(value.shape()) + " added to " + shape_string(into.shape()));
    float* dst = into.f();
    const float* src = value.f();
    for (std::int64_t k = 0; k < into.numel(); ++k) dst[k] += src[k];
  };
  for (std::size_t k = 0; k < output_refs_.size() && k < output_grads.size(); ++k)
    if (output_refs_[k].slot >= 0 && output_grads[k].numel() > 0) accumulate(g[output_refs_[k].slot], output_grads[k], "graph output");
  for (std::size_t s = steps_.size(); s-- > 0;) {
    const Step& step = steps_[s];
    std::vector<const Tensor*> dout(step.output_slots.size(), nullptr), outs(step.output_slots.size(), nullptr);
    bool any = false;
    for (std::size_t k = 0; k < step.output_slots.size(); ++k) {
      const int slot = step.output_slots[k];
      if (slot < 0) continue;
      outs[k] = &tape.slots[slot];
      if (g[slot].numel() > 0) {
        dout[k] = &g[slot];
        any = true;
      }
    }
    if (!any) continue;
    std::vector<bool> need(step.inputs.size(), false);
    bool needed = false;
    for (std::size_t k = 0; k < step.inputs.size(); ++k) {
      const Ref& r = step.inputs[k];
      if (!step.op->differentiable_input(k)) continue;
      need[k] = (r.slot >= 0 && slot_requires_grad_[r.slot]) || (r.constant && parameter_index_.count(r.constant));
      needed = needed || need[k];
    }
    if (!needed) continue;
    // Multiplicative Walking Noise on output 0 scales its gradient by the same factors
    // (y·(1 + σ·ε) has derivative 1 + σ·ε); additive noise passes it unchanged.
    Tensor scaled;
    if (step.noise_mul != 0 && dout[0] != nullptr) {
      scaled = *dout[0];
      const std::int64_t per_sample = scaled.rank() > 0 && scaled.dim(0) > 0 ? scaled.numel() / scaled.dim(0) : scaled.numel();
      const models::CounterRng rng(noise_seed_, models::stream_id(noise_trial_, 4095, static_cast<int>(s), models::Purpose::SiteNoise));
      std::vector<float> factors(static_cast<std::size_t>(scaled.numel()));
      rng.fill_normal((std::uint64_t{1} << 62) + tape.context.first_sample * static_cast<std::uint64_t>(per_sample), factors.size(), factors.data());
      for (std::int64_t k = 0; k < scaled.numel(); ++k) scaled.f()[k] *= 1.0f + step.noise_mul * factors[static_cast<std::size_t>(k)];
      dout[0] = &scaled;
    }
    std::vector<const Tensor*> args;
    for (const Ref& r : step.inputs) args.push_back(r.constant ? r.constant : (r.slot >= 0 ? &tape.slots[r.slot] : nullptr));
    std::vector<Tensor> din(step.inputs.size());
    RunContext context = tape.context;
    context.node = static_cast<int>(s);
    try {
      step.op->backward(args, outs, dout, need, din, context);
    } catch (const UnsupportedError& e) {
      throw UnsupportedError(step.spec.where() + ": " + e.what());
    }
    for (std::size_t k = 0; k < step.inputs.size(); ++k) {
      if (!need[k] || din[k].numel() == 0) continue;
      const Ref& r = step.inputs[k];
      if (r.slot >= 0) accumulate(g[r.slot], std::move(din[k]), step.spec.where());
      else accumulate(grads[static_cast<std::size_t>(parameter_index_.at(r.constant))], std::move(din[k]), step.spec.where());
    }
    for (int slot : step.output_slots)
      if (slot >= 0) g[slot] = Tensor();  // consumed
  }
}

std::vector<Tensor> Graph::run(std::vector<Tensor> inputs, const RunContext& context) const {
  return execute(std::move(inputs), context, nullptr);
}

std::vector<Tensor> Graph::execute(std::vector<Tensor> inputs, const RunContext& context, Tape* tape) const {
  if (!finalized_) throw std::logic_error("Graph::run before finalize");
  const std::string where = source.empty() ? std::string("graph") : source;
  if (inputs.size() != inputs_.size())
    throw Error(where + ": the model has " + std::to_string(inputs_.size()) + " input(s), got " + std::to_string(inputs.size()));
  std::vector<Tensor> slots(static_cast<std::size_t>(slot_count_));
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    const ValueInfo& info = inputs_[k];
    if (inputs[k].dtype() != info.dtype)
      throw Error(where + ": input '" + info.name + "' must be " + dtype_name(info.dtype) + ", got " + dtype_name(inputs[k].dtype()));
    if (info.shape_known) {
      bool fits = inputs[k].rank() == static_cast<int>(info.shape.size());
      for (std::size_t d = 0; fits && d < info.shape.size(); ++d)
        fits = info.shape[d] < 0 || info.shape[d] == inputs[k].shape()[d];
      if (!fits) {
        Shape shown = info.shape;
        std::string expected = "[";
        for (std::size_t d = 0; d < shown.size(); ++d) expected += (d ? ", " : "") + (shown[d] < 0 ? std::string("?") : std::to_string(shown[d]));
        throw Error(where + ": input '" + info.name + "' must have shape " + expected + "], got " + shape_string(inputs[k].shape()));
      }
    }
    slots[input_slots_[k]] = std::move(inputs[k]);
  }
  std::vector<const Tensor*> args;
  RunContext step_context = context;
  for (const Step& step : steps_) {
    args.clear();
    for (const Ref& r : step.inputs) args.push_back(r.constant ? r.constant : (r.slot >= 0 ? &slots[r.slot] : nullptr));
    std::vector<Tensor> results(step.output_slots.size());
    step_context.node = static_cast<int>(&step - steps_.data());
    try {
      step.op->run(args, results, step_context);
    } catch (const Error& e) {
      // Errors found at run time (shapes that only meet here, a tensor too large) name the model
      // file and the node.
      std::string message = e.what();
      if (message.find(step.spec.where()) == std::string::npos) message = step.spec.where() + ": " + message;
      if (message.rfind(where, 0) != 0) message = where + ": " + message;
      if (dynamic_cast<const UnsupportedError*>(&e)) throw UnsupportedError(message);
      throw Error(message);
    }
    if ((step.noise_add != 0 || step.noise_mul != 0) && !results.empty() && results[0].dtype() == DType::Float32 && results[0].numel() > 0) {
      // Element k of sample s has global index s·(elements per sample) + k, so a sample's noise
      // does not depend on how the batch was split.
      Tensor& t = results[0];
      const std::int64_t per_sample = t.rank() > 0 && t.dim(0) > 0 ? t.numel() / t.dim(0) : t.numel();
      const models::CounterRng rng(noise_seed_, models::stream_id(noise_trial_, 4095, static_cast<int>(&step - steps_.data()), models::Purpose::SiteNoise));
      models::apply_noise(rng, context.first_sample * static_cast<std::uint64_t>(per_sample), step.noise_add, step.noise_mul, t.f(), t.numel());
    }
    for (std::size_t k = 0; k < results.size(); ++k)
      if (step.output_slots[k] >= 0) slots[step.output_slots[k]] = std::move(results[k]);
    if (tape == nullptr)
      for (int s : step.release) slots[s] = Tensor();
  }
  std::vector<Tensor> outputs;
  for (std::size_t k = 0; k < output_refs_.size(); ++k) {
    const Ref& r = output_refs_[k];
    bool listed_again = false;  // a value named twice among the outputs is copied, not moved
    for (std::size_t j = k + 1; j < output_refs_.size(); ++j) listed_again = listed_again || output_refs_[j].slot == r.slot;
    if (r.constant) outputs.push_back(*r.constant);
    else if (listed_again || tape != nullptr) outputs.push_back(slots[r.slot]);
    else outputs.push_back(std::move(slots[r.slot]));
  }
  if (tape != nullptr) {
    tape->slots = std::move(slots);
    tape->context = context;
  }
  return outputs;
}

void Graph::program(const std::function<std::string(const LinearLayer&)>& kind_for, const models::ProgramContext& context) {
  for (LinearLayer* layer : layers_) layer->program(kind_for(*layer), context);
}

void Graph::program_ideal() {
  program([](const LinearLayer&) { return models::exact_kind_name(); }, {});
}

std::vector<int> Graph::set_noise_sites(const std::vector<NoiseSite>& sites, std::uint64_t seed, std::uint64_t trial) {
  noise_seed_ = seed;
  noise_trial_ = trial;
  std::vector<int> matched(sites.size(), 0);
  for (Step& step : steps_) {
    step.noise_add = step.noise_mul = 0;
    for (std::size_t k = 0; k < sites.size(); ++k) {
      if (!sites[k].op.empty() && sites[k].op != step.spec.op_type) continue;
      if (fnmatch(sites[k].nodes.c_str(), step.spec.name.c_str(), 0) != 0) continue;
      step.noise_add = sites[k].sigma_add;
      step.noise_mul = sites[k].sigma_mul;
      ++matched[k];
      break;
    }
  }
  return matched;
}

std::vector<std::pair<std::string, std::string>> Graph::nodes() const {
  std::vector<std::pair<std::string, std::string>> list;
  for (const Step& s : steps_) list.emplace_back(s.spec.name, s.spec.op_type);
  return list;
}

}  // namespace faultline::nn
