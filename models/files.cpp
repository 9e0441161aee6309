#include "models/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "models/error.h"

namespace faultline {
namespace {

std::string folder_of(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void write_all(int fd, std::string_view bytes, const std::string& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path + ": write failed (" + std::strerror(n < 0 ? errno : ENOSPC) + ")");
    done += static_cast<std::size_t>(n);
  }
}

void check_folder(const std::string& folder, const std::string& what) {
  struct stat st {};
  if (::stat(folder.c_str(), &st) != 0) throw Error(what + ": folder '" + folder + "' does not exist");
  if (!S_ISDIR(st.st_mode)) throw Error(what + ": '" + folder + "' is not a folder");
  if (::access(folder.c_str(), W_OK | X_OK) != 0) throw Error(what + ": folder '" + folder + "' is not writable");
}

}  // namespace

std::string read_input_file(const std::string& path) {
  if (path.empty()) throw Error("input file name is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": no such file");
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a folder, not a file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string bytes;
  if (S_ISREG(st.st_mode)) bytes.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      throw Error(path + ": read error (" + std::strerror(e) + ")");
    }
    if (n == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return bytes;
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  if (path.empty()) throw Error("output file name is empty");
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) throw Error(path + ": is a folder, not a file");
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or FIFO: renaming over it would replace the node itself.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw Error(path + ": cannot open for writing (" + std::strerror(errno) + ")");
    try {
      write_all(fd, bytes, path);
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0) throw Error(path + ": write failed (" + std::strerror(errno) + ")");
    return;
  }
  // A symbolic link to a file stays a link: the file it points to is replaced.
  struct stat link {};
  if (exists && ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
    std::error_code ec;
    const std::filesystem::path target = std::filesystem::canonical(path, ec);
    if (!ec) return write_file_atomically(target.string(), bytes);
  }
  const std::string folder = folder_of(path);
  check_folder(folder, path);
  std::string temp = (std::filesystem::path(folder) / ("." + std::filesystem::path(path).filename().string() + ".XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) throw Error(path + ": cannot create a file in '" + folder + "' (" + std::strerror(errno) + ")");
  // mkstemp makes the file 0600; results are ordinary files (0666 less the umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  try {
    write_all(fd, bytes, path);
    if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) throw Error(path + ": write failed (" + std::strerror(errno) + ")");
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(temp.c_str());
    throw Error(path + ": write failed (" + std::strerror(e) + ")");
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(temp.c_str());
    throw Error(path + ": cannot replace the file (" + std::strerror(e) + ")");
  }
}

void check_output_file(const std::string& path, const std::string& flag) {
  if (path.empty()) throw Error(flag + ": the file name is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw Error(flag + ": '" + path + "' is a folder, not a file");
    if (::access(path.c_str(), W_OK) != 0 && !S_ISREG(st.st_mode)) throw Error(flag + ": '" + path + "' is not writable");
    if (!S_ISREG(st.st_mode)) return;  // a device or FIFO is written in place
  }
  check_folder(folder_of(path), flag + " '" + path + "'");
}

void check_output_folder(const std::string& path, const std::string& flag) {
  if (path.empty()) throw Error(flag + ": the folder name is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(flag + ": '" + path + "' exists and is not a folder");
    if (::access(path.c_str(), W_OK | X_OK) != 0) throw Error(flag + ": folder '" + path + "' is not writable");
    return;
  }
  std::string parent = std::filesystem::path(path).lexically_normal().parent_path().string();
  if (parent.empty()) parent = ".";
  check_folder(parent, flag + " '" + path + "'");
}

void check_written_file(const std::string& path, bool text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(path + ": was not written");
  if (!S_ISREG(st.st_mode)) return;
  if (st.st_size == 0) throw Error(path + ": is empty after writing (disk full?)");
  if (text) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char last = 0;
    const bool read_ok = fd >= 0 && ::pread(fd, &last, 1, st.st_size - 1) == 1;
    if (fd >= 0) ::close(fd);
    if (!read_ok || last != '\n') throw Error(path + ": ends in the middle of a line after writing (disk full?)");
  }
}

}  // namespace faultline
