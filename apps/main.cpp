// The `faultline` command line: dispatches to one command (apps/COMMAND.cpp) and turns errors
// into one line on stderr and an exit status (2 for bad input).
#include <malloc.h>

#include "apps/cli.h"
#include "sim/rtl_unit.h"
#include "studies/mpi_runner.h"

using namespace faultline;
using namespace faultline::app;

namespace {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"train", "train a classifier (built: mlp, lenet5; or any ONNX model) on its graph and write it as ONNX", cmd_train},
      {"eval", "accuracy of an ONNX classifier on a dataset, on a hardware description", cmd_eval},
      {"infer", "run an ONNX model on given tensors (NPY or TensorProto in, NPY out)", cmd_infer},
      {"sweep", "accuracy over a grid of hardware values, or Walking Noise per layer with midpoints (resumable, MPI)", cmd_sweep},
      {"trace", "record per-layer noise traces (NPY + JSON) at any level, fit a noise model and check its replay", cmd_trace},
      {"report", "a Markdown report with plots (matplotlib) from sweep and eval result files", cmd_report},
      {"hw", "check or show a hardware description (hwcfg/*.yaml)", cmd_hw},
      {"cosim", "drive an RTL module with random stimulus against its behavioural twin", cmd_cosim},
      {vta_command_name, vta_command_summary, cmd_vta},
      {ipu_command_name, ipu_command_summary, cmd_ipu},
      {"tune", "auto-tune the schedules of layers on a VTA unit, measured on the cycle level (resumable)", cmd_tune},
  };
  return list;
}

void print_usage(std::FILE* to) {
  std::fprintf(to, "usage: faultline COMMAND [options]   (faultline COMMAND --help for its options)\n\ncommands:\n");
  for (const auto& c : commands()) std::fprintf(to, "  %-8s %s\n", c.name, c.summary);
}

}  // namespace

// A message on exactly one line: control characters from file contents or names are escaped.
std::string one_line(const std::string& message) {
  std::string out;
  for (unsigned char c : message) {
    if (c == '\n') out += "\\n";
    else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int main(int argc, char** argv) {
  // Tensors of a few hundred KiB are made and dropped for every operator call; glibc would map
  // and unmap each (its mmap threshold starts at 128 KiB), faulting every page in again. Keep
  // them on the heap instead (the memory is reused, not returned to the system between calls).
  mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
  sim::register_built_rtl();
  std::unique_ptr<studies::TaskRunner> runner;
  try {
    runner = studies::make_task_runner(&argc, &argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "faultline: error: %s\n", one_line(e.what()).c_str());
    return kUsageError;
  }
  task_runner = runner.get();
  if (argc < 2) {
    print_usage(stderr);
    return kUsageError;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : commands()) {
    if (name != c.name) continue;
    try {
      return c.run(args);
    } catch (const po::error& e) {
      if (runner->writer()) std::fprintf(stderr, "faultline %s: error: %s (see faultline %s --help)\n", c.name, one_line(e.what()).c_str(), c.name);
      studies::abort_all_ranks(kUsageError);
      return kUsageError;
    } catch (const Error& e) {
      if (runner->writer()) std::fprintf(stderr, "faultline %s: error: %s\n", c.name, one_line(with_flags(e.what())).c_str());
      studies::abort_all_ranks(kUsageError);
      return kUsageError;
    } catch (const std::bad_alloc&) {
      std::fprintf(stderr, "faultline %s: error: out of memory\n", c.name);
      studies::abort_all_ranks(1);
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "faultline %s: internal error: %s\n", c.name, one_line(e.what()).c_str());
      studies::abort_all_ranks(1);
      return 1;
    }
  }
  std::fprintf(stderr, "faultline: error: unknown command '%s' (faultline --help lists the commands)\n", one_line(name).c_str());
  return kUsageError;
}
