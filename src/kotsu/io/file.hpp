// kotsu/io/file: reading, memory-mapping and atomically writing files.
// ensures: write_atomic leaves either the old file or the complete new one at `path`, never a torn file
//          (write to a temporary in the same folder, fsync, rename, fsync the folder).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace kotsu {

std::string read_file(const std::string& path, size_t max_bytes = size_t(1) << 31);
void write_atomic(const std::string& path, std::string_view data);
void write_atomic(const std::string& path, const void* const* parts, const size_t* sizes, size_t n_parts);
// Streaming: `produce` hands the file's bytes to the sink in order, so a large file (an optimizer state)
// never needs a copy in memory. An exception from `produce` or the sink leaves the old file.
using ByteSink = std::function<void(const void*, size_t)>;
void write_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce);
// Removes the temporary files of write_atomic calls that never finished (".NAME.tmpDIGITS", left by a
// kill -9 or a power cut) from `dir` and its direct subfolders; returns how many. Only for a directory
// no other process is writing into (a run directory at the start of its next run).
size_t remove_stale_temp_files(const std::string& dir);
bool file_exists(const std::string& path);
void make_dirs(const std::string& path);

// A read-only memory map of a whole file; an empty file maps to size 0.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  // Drops the pages of [begin, begin + bytes) (and the rest of their first and last page) from this
  // process's memory; reading them again faults them back in from the page cache. Copying a file out
  // range by range and releasing each keeps the mapping from adding the file's size to peak memory.
  void release(const uint8_t* begin, size_t bytes) const;
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kotsu
