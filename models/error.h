// Errors that Faultline reports to its user.
//
// `faultline::Error` means "the input is wrong" (a malformed file, an unknown option, a shape
// that does not fit): the command line prints its one-line message and exits with status 2.
// Anything else that escapes is a bug in Faultline, not in the user's input.
#pragma once

#include <stdexcept>
#include <string>

namespace faultline {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// An input that is well formed but asks for something Faultline does not implement (an ONNX
// operator, attribute value or data type). Kept apart so that conformance tests can tell
// "knowingly unsupported" from "wrong".
class UnsupportedError : public Error {
 public:
  explicit UnsupportedError(const std::string& message) : Error(message) {}
};

}  // namespace faultline
