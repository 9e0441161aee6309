// Reading inputs and writing results, with the errors a user can act on. Input: a missing file,
// a folder given as a file and an unreadable file are told apart. Output: result files are
// written whole or not at all: a run that fails (a full disk, an unwritable
// folder, a kill) never leaves a truncated result where a good one was, and never reports
// success for a file it could not write (issue 12). Kept next to error.h because every folder
// that writes results (nn, studies, traces, sim, apps) depends on models/ and nothing lower.
#pragma once

#include <string>
#include <string_view>

namespace faultline {

// The whole content of the file at `path`. Throws faultline::Error "PATH: no such file",
// "PATH: is a folder, not a file", "PATH: cannot open (Permission denied)" or a read error.
std::string read_input_file(const std::string& path);

// Writes `bytes` to `path`: into a temporary file in the same folder, checked at every write and
// at the close, then renamed over `path`. A path that exists and is not a regular file (a
// device such as /dev/null or /dev/full, a FIFO) is written directly, with the same checks.
// Never creates a missing folder. Throws faultline::Error naming the path and what failed.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Checks, before a long run, that `path` can be written as a file: its folder exists and is a
// writable folder, and `path` is not a folder. `flag` (e.g. "--out") leads the message.
void check_output_file(const std::string& path, const std::string& flag);

// The same for an output folder that the run creates (or reuses): its parent must exist and be
// writable; `path` must not be a file.
void check_output_folder(const std::string& path, const std::string& flag);

// After a writer we do not own (SystemC's VCD, Verilator's FST) has closed `path`: throws when
// the file is missing or empty, or, for text formats, does not end with a complete line — what
// a full disk leaves behind.
void check_written_file(const std::string& path, bool text);

}  // namespace faultline
