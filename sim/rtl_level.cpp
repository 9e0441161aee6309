#include "sim/rtl_level.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <exception>

#include "models/error.h"
#include "models/files.h"
#include "models/named_registry.h"
#include "sim/cycle_level.h"
#include "sim/rtl_unit.h"

namespace faultline::sim {

namespace {

// Runs jobs inside a SystemC thread: each run() notifies it and simulates until the job is done.
class Executor : public sc_core::sc_module {
 public:
  SC_HAS_PROCESS(Executor);
  explicit Executor(const sc_core::sc_module_name& name) : sc_module(name) { SC_THREAD(loop); }
  sc_core::sc_event work;
  std::function<void()> job;
  bool done = false;
  std::exception_ptr failure;  // what the job threw: rethrown by run() outside the simulation

 private:
  void loop() {
    for (;;) {
      wait(work);
      // An exception leaving a SystemC process becomes an sc_report that buries the message;
      // the job's own error is carried out instead.
      try {
        if (job) job();
      } catch (...) {
        failure = std::current_exception();
      }
      done = true;
    }
  }
};

}  // namespace

struct RtlSimulation::Impl {
  std::vector<RtlUnitSpec> specs;
  std::unique_ptr<Executor> executor;
  std::vector<std::unique_ptr<RtlMatrixVectorUnit>> units;
  std::thread::id owner;
  std::mutex mutex;
  std::vector<std::string> waveforms;
  bool fst = false;
  bool check = false;

  void run(const std::function<void()>& job) {
    if (std::this_thread::get_id() != owner)
      throw Error("the RTL level runs the simulation in-line: evaluate on the thread that created it (--threads 1)");
    std::lock_guard<std::mutex> lock(mutex);
    executor->job = job;
    executor->done = false;
    executor->work.notify(sc_core::SC_ZERO_TIME);
    try {
      sc_core::sc_start();
    } catch (const sc_core::sc_report& e) {
      throw Error(std::string("SystemC simulation failed: ") + e.what());
    }
    executor->job = nullptr;
    if (executor->failure) std::rethrow_exception(std::exchange(executor->failure, nullptr));
    if (!executor->done) throw Error("the RTL simulation stopped before the operation finished");
  }
};

namespace {
models::NamedRegistry<RtlBinding>& rtl_bindings() {
  static auto* registry = new models::NamedRegistry<RtlBinding>("RTL binding of");
  return *registry;
}
}  // namespace

void register_rtl_binding(const std::string& kind, RtlBinding binding) { rtl_bindings().add(kind, std::move(binding)); }
const RtlBinding* find_rtl_binding(const std::string& kind) { return rtl_bindings().find(kind); }
std::vector<std::string> rtl_binding_kinds() { return rtl_bindings().names(); }

RtlSimulation::RtlSimulation(std::vector<RtlUnitSpec> units, const std::string& vcd_path, bool fst, bool check, RtlEngine engine)
    : impl_(std::make_unique<Impl>()) {
  claim_simulation("the RTL level");
  ::setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);
  impl_->specs = std::move(units);
  impl_->owner = std::this_thread::get_id();
  impl_->fst = fst;
  impl_->check = check;
  try {
    impl_->executor = std::make_unique<Executor>("rtl_level");
    for (const auto& spec : impl_->specs) {
      const RtlModuleKind& kind = find_rtl_module(spec.rtl);
      std::string name = spec.name;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
      const RtlEngine used = vcd_path.empty() ? engine : RtlEngine::SystemC;
      impl_->units.push_back(kind.factory(used, fst)(name, sc_core::sc_time(1e6 / spec.clock_mhz, sc_core::SC_PS)));
    }
    sc_core::sc_start(sc_core::SC_ZERO_TIME);
    if (!vcd_path.empty()) {
      // One waveform per unit: FILE, or FILE with the unit's name before ".vcd" when there are several.
      for (std::size_t u = 0; u < impl_->units.size(); ++u) {
        std::string path = vcd_path;
        if (impl_->units.size() > 1) {
          const std::string ext = fst ? ".fst" : ".vcd";
          const std::string stem = path.size() > 4 && path.substr(path.size() - 4) == ext ? path.substr(0, path.size() - 4) : path;
          path = stem + "." + impl_->units[u]->unit_name() + ext;
        }
        check_output_file(path, fst ? "--fst" : "--vcd");
        impl_->waveforms.push_back(path);
        try {
          impl_->units[u]->open_rtl_trace(path);
        } catch (const std::runtime_error& e) {
          throw Error(e.what());
        }
      }
    }
    // Reset every unit once and write its registers (the hwcfg's values, else the reset values).
    impl_->run([this] {
      for (std::size_t k = 0; k < impl_->units.size(); ++k) {
        RtlMatrixVectorUnit& u = *impl_->units[k];
        u.reset();
        const auto& values = impl_->specs[k].registers;
        for (std::size_t r = 0; r < u.info().registers.size(); ++r) {
          const long long v = r < values.size() ? values[r].value : u.info().registers[r].fallback;
          u.write_register(u.info().registers[r].address, static_cast<std::uint32_t>(v));
        }
      }
    });
  } catch (const sc_core::sc_report& e) {
    throw Error(std::string("SystemC elaboration failed: ") + e.what());
  }
}

RtlSimulation::~RtlSimulation() = default;

std::vector<std::string> RtlSimulation::close_waveforms() {
  impl_->run([this] {
    for (const auto& u : impl_->units) u->flush_rtl_trace();
  });
  for (const auto& path : impl_->waveforms) check_written_file(path, !impl_->fst);
  return impl_->waveforms;
}

std::unique_ptr<models::Substrate> RtlSimulation::wrap(std::size_t unit, std::unique_ptr<models::Substrate> functional) {
  if (unit >= impl_->units.size()) throw std::out_of_range("RtlSimulation::wrap: no unit " + std::to_string(unit));
  const RtlBinding* binding = find_rtl_binding(functional->kind());
  if (binding == nullptr) throw Error("unit " + impl_->specs[unit].name + ": kind " + functional->kind() + " has no RTL binding");
  RtlContext context{impl_->specs[unit].name, impl_->units[unit].get(), impl_->specs[unit].clock_mhz,
                     [impl = impl_.get()](const std::function<void()>& job) { impl->run(job); }, &impl_->specs[unit].registers, impl_->check};
  return binding->wrap(context, std::move(functional));
}

}  // namespace faultline::sim
