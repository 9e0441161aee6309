// What the command files of `faultline` share: option parsing with --help, the common options,
// and the presentation of library errors with the flags the user typed. One file per command
// (apps/COMMAND.cpp), each only parsing its options and calling the libraries.
#pragma once

#include <boost/program_options.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "apps/progress.h"
#include "models/error.h"
#include "nn/dataset.h"
#include "studies/sweep.h"

// Boost.Program_options reads unsigned options with lexical_cast, which turns "-1" into 2^64-1:
// unsigned options here take only digits (found by ADL through boost::any, before Boost's own
// template, which is less specialised in its last parameter).
namespace boost {
void validate(boost::any& value, const std::vector<std::string>& tokens, unsigned long* target, int);
void validate(boost::any& value, const std::vector<std::string>& tokens, unsigned long long* target, int);
void validate(boost::any& value, const std::vector<std::string>& tokens, unsigned int* target, int);
}  // namespace boost

namespace faultline::app {

namespace po = boost::program_options;

constexpr int kUsageError = 2;

// Parses `args` against `options`; returns false when --help was asked for (after printing it).
bool parse(const std::string& command, const std::string& usage, const po::options_description& options,
           const std::vector<std::string>& args, po::variables_map& vm, const po::positional_options_description& positional = {});
void add_common(po::options_description& options, int* threads);
void check_threads(int threads);
void write_text(const std::string& path, const std::string& text);
// --layout, --scale and --normalize of the commands that read --data (nn::DataOptions).
struct DataFlags {
  std::string layout = "nchw", scale, normalize;
};
void add_data_options(po::options_description& options, DataFlags* flags);
// The dataset `spec` names (nn::load_dataset) with the flags' preprocessing.
nn::Dataset load_data(const std::string& spec, bool train, const DataFlags& flags);
constexpr const char* kDataHelp =
    "fashion-mnist, or a folder with MNIST-format IDX files, CIFAR-10's binary batches (*.bin) or images.npy + labels.npy";

// A library error message with the option field or override it names replaced by its flag.
std::string with_flags(const std::string& message);

// How sweep trials are run: in this process, or spread over MPI ranks (studies/mpi_runner.h).
extern studies::TaskRunner* task_runner;

int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_sweep(const std::vector<std::string>& args);
int cmd_trace(const std::vector<std::string>& args);
int cmd_report(const std::vector<std::string>& args);
int cmd_hw(const std::vector<std::string>& args);
int cmd_infer(const std::vector<std::string>& args);
int cmd_cosim(const std::vector<std::string>& args);
int cmd_vta(const std::vector<std::string>& args);
int cmd_tune(const std::vector<std::string>& args);
int cmd_ipu(const std::vector<std::string>& args);
// The IPU command's name and summary, kept in apps/ipu.cpp with the hardware kind's other names.
extern const char* const ipu_command_name;
extern const char* const ipu_command_summary;
// The VTA command's name and summary, kept in apps/vta.cpp with the hardware kind's other names.
extern const char* const vta_command_name;
extern const char* const vta_command_summary;

}  // namespace faultline::app
