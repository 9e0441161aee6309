#include "apps/cli.h"

#include <cerrno>
#include <cstdlib>
#include <limits>

#include "models/files.h"
#include "nn/parallel.h"

namespace boost {
namespace {
template <typename T>
void validate_unsigned(boost::any& value, const std::vector<std::string>& tokens) {
  program_options::validators::check_first_occurrence(value);
  const std::string& text = program_options::validators::get_single_string(tokens);
  const bool digits = !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos;
  unsigned long long v = 0;
  errno = 0;
  if (digits) v = std::strtoull(text.c_str(), nullptr, 10);
  if (!digits || errno == ERANGE || v > std::numeric_limits<T>::max())
    throw program_options::invalid_option_value(text);  // "the argument ('-1') for option '--seed' is invalid"
  value = boost::any(static_cast<T>(v));
}
}  // namespace
void validate(boost::any& value, const std::vector<std::string>& tokens, unsigned long* target, int) {
  (void)target;
  validate_unsigned<unsigned long>(value, tokens);
}
void validate(boost::any& value, const std::vector<std::string>& tokens, unsigned long long* target, int) {
  (void)target;
  validate_unsigned<unsigned long long>(value, tokens);
}
void validate(boost::any& value, const std::vector<std::string>& tokens, unsigned int* target, int) {
  (void)target;
  validate_unsigned<unsigned int>(value, tokens);
}
}  // namespace boost

namespace faultline::app {

studies::TaskRunner* task_runner = nullptr;

bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm, const po::positional_options_description& positional) {
  po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: faultline " << command << " " << usage << "\n\n" << options << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

void add_common(po::options_description& options, int* threads) {
  options.add_options()
      ("help,h", "show this help")
      ("threads", po::value<int>(threads)->default_value(nn::default_threads()), "worker threads (default: all cores)");
}

void check_threads(int threads) {
  if (threads < 1 || threads > 1024) throw Error("--threads: must be between 1 and 1024, got " + std::to_string(threads));
}

void write_text(const std::string& path, const std::string& text) { write_file_atomically(path, text); }

void add_data_options(po::options_description& options, DataFlags* flags) {
  options.add_options()
      ("layout", po::value(&flags->layout)->default_value(flags->layout), "--data with images.npy: the axis order of the images, nchw or nhwc")
      ("scale", po::value(&flags->scale), "multiply stored values by this, e.g. 1/255 (default: 1/255 for bytes, 1 for floats)")
      ("normalize", po::value(&flags->normalize), "then per channel (x - mean) / std: MEAN,...:STD,... (e.g. 0.4914,0.4822,0.4465:0.247,0.243,0.261)");
}

nn::Dataset load_data(const std::string& spec, bool train, const DataFlags& flags) {
  return nn::load_dataset(spec, train, nn::parse_data_options(flags.layout, flags.scale, flags.normalize));
}

std::string with_flags(const std::string& message) {
  static const std::map<std::string, std::string> flags = {
      {"arch", "--arch"}, {"epochs", "--epochs"}, {"batch_size", "--batch-size"}, {"optimizer", "--optimizer"},
      {"learning_rate", "--lr"}, {"momentum", "--momentum"}, {"weight_decay", "--weight-decay"}, {"schedule", "--schedule"},
      {"threads", "--threads"}, {"backward", "--backward"}, {"limit", "--limit"}, {"trials", "--trials"}, {"walking", "--walking"},
      {"sweep", "--sweep"}, {"sigma", "--sigma"}, {"layers", "--layers"}, {"tolerance", "--tolerance"},
      {"max_bisections", "--max-bisections"}, {"sweep, walking", "--sweep, --walking"},
      {"layout", "--layout"}, {"scale", "--scale"}, {"normalize", "--normalize"}};
  std::string out = message;
  // "field: ..." or "field 'value': ..." at the start.
  const std::size_t end = std::min(out.find(':'), out.find(" '"));
  if (end != std::string::npos) {
    const auto flag = flags.find(out.substr(0, end));
    if (flag != flags.end()) out = flag->second + out.substr(end);
  }
  if (out.rfind("override '", 0) == 0) out = "--set" + out.substr(8);
  if (out.rfind("sweep ", 0) == 0) out = "--" + out;  // "sweep PATH: ..." about one grid axis
  for (std::size_t at; (at = out.find("(override)")) != std::string::npos;) out.replace(at, 10, "(--set)");
  if (const std::size_t at = out.find("; a hardware description, not noise"); at != std::string::npos) out.replace(at, 35, "; use --hw for hardware");
  return out;
}

}  // namespace faultline::app
