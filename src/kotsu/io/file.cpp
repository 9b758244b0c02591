#include "kotsu/io/file.hpp"

#include <algorithm>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "kotsu/core/error.hpp"

namespace kotsu {

namespace {
std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path, "", "write failed: " + errno_text());
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}
// Opens `path` read-only and checks it is a regular file; the caller closes the descriptor.
int open_regular(const std::string& path, struct stat& st) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path, "", "cannot open: " + errno_text());
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path, "", "not a regular file");
  }
  return fd;
}
}  // namespace

std::string read_file(const std::string& path, size_t max_bytes) {
  struct stat st {};
  int fd = open_regular(path, st);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    throw Error(path, "", "file is " + std::to_string(st.st_size) + " bytes, more than the limit of " +
                              std::to_string(max_bytes));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

void write_atomic(const std::string& path, std::string_view data) {
  const void* parts[1] = {data.data()};
  size_t sizes[1] = {data.size()};
  write_atomic(path, parts, sizes, 1);
}

namespace {
// ".NAME.tmpDIGITS": the temporary name write_atomic gives NAME (built by append: GCC 12's
// -Wstringop-overflow misfires on operator+ of a literal and a temporary)
std::string temp_name(const std::string& name, unsigned id) {
  std::string s;
  s.reserve(name.size() + 16);
  s.append(".").append(name).append(".tmp").append(std::to_string(id));
  return s;
}
bool is_temp_name(const std::string& s) {
  const size_t t = s.rfind(".tmp");
  if (s.size() < 7 || s[0] != '.' || t == std::string::npos || t < 2 || t + 4 == s.size()) return false;
  return std::all_of(s.begin() + static_cast<long>(t) + 4, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
}  // namespace

size_t remove_stale_temp_files(const std::string& dir) {
  namespace fs = std::filesystem;
  size_t n = 0;
  std::error_code ec;
  auto sweep = [&](const fs::path& d) {
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.is_regular_file(ec) && is_temp_name(e.path().filename().string()) && fs::remove(e.path(), ec)) ++n;
  };
  if (!fs::is_directory(dir, ec)) return 0;
  sweep(dir);
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec) && !e.is_symlink(ec)) sweep(e.path());
  return n;
}

void write_atomic(const std::string& path, const void* const* parts, const size_t* sizes, size_t n_parts) {
  write_atomic(path, [&](const ByteSink& sink) {
    for (size_t i = 0; i < n_parts; ++i) sink(parts[i], sizes[i]);
  });
}

void write_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  std::random_device rd;
  std::string tmp = (dir / temp_name(target.filename().string(), rd())).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path, "", "cannot create temporary file: " + errno_text());
  try {
    produce([&](const void* data, size_t size) { write_all(fd, data, size, path); });
    if (::fsync(fd) != 0) throw Error(path, "", "fsync failed: " + errno_text());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = errno_text();
    ::unlink(tmp.c_str());
    throw Error(path, "", "rename failed: " + why);
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(path, "", "cannot create directory: " + ec.message());
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  struct stat st {};
  int fd = open_regular(path, st);
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error(path, "", "mmap failed: " + errno_text());
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

void MappedFile::release(const uint8_t* begin, size_t bytes) const {
  if (!data_ || bytes == 0) return;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto base = reinterpret_cast<uintptr_t>(data_);
  uintptr_t lo = reinterpret_cast<uintptr_t>(begin) & ~(page - 1);
  uintptr_t hi = (reinterpret_cast<uintptr_t>(begin) + bytes + page - 1) & ~(page - 1);
  lo = std::max(lo, base);
  hi = std::min(hi, (base + size_ + page - 1) & ~(page - 1));
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);  // advice only: failure changes nothing read
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace kotsu
