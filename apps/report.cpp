// `faultline report`: Markdown report with plots of evaluation, cycle-level and sweep results (apps/report.py).
#include "apps/cli.h"

#include "models/files.h"

#include <spawn.h>
#include <sys/wait.h>

namespace faultline::app {

int cmd_report(const std::vector<std::string>& args) {
  std::string out = "report";
  std::vector<std::string> results;
  po::options_description options("report options");
  options.add_options()
      ("help,h", "show this help")
      ("out", po::value(&out)->default_value(out), "folder for report.md and the figures (PNG and SVG)")
      ("results", po::value(&results), "result files: faultline sweep PREFIX.json, faultline eval --out JSON");
  po::positional_options_description positional;
  positional.add("results", -1);
  po::variables_map vm;
  if (!parse("report", "RESULT.json [RESULT.json ...] [--out DIR]", options, args, vm, positional)) return 0;
  if (results.empty()) throw Error("report: give at least one result file");
  for (const auto& r : results) {
    if (std::filesystem::is_directory(r)) throw Error(r + ": is a folder, not a file");
    if (!std::filesystem::is_regular_file(r)) throw Error(r + ": no such file");
  }
  check_output_folder(out, "--out");
  // Plots are drawn by apps/report.py with Debian's matplotlib (FAULTLINE_PYTHON overrides the interpreter).
  const char* env = std::getenv("FAULTLINE_PYTHON");
  const std::string python = env && *env ? env : FAULTLINE_PYTHON_INTERPRETER;
  const std::string script = FAULTLINE_REPORT_SCRIPT;
  if (!std::filesystem::exists(script)) throw Error(script + ": the report script is missing from the source tree");
  std::vector<std::string> argv_strings = {python, script, "--out", out};
  argv_strings.insert(argv_strings.end(), results.begin(), results.end());
  std::vector<char*> argv_c;
  for (auto& a : argv_strings) argv_c.push_back(a.data());
  argv_c.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = 0;
  if (posix_spawn(&pid, python.c_str(), nullptr, nullptr, argv_c.data(), environ) != 0)
    throw Error(python + ": cannot run (apt-get install python3-matplotlib python3-numpy)");
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) throw std::runtime_error("the report script was killed");
  return WEXITSTATUS(status);
}

}  // namespace faultline::app
