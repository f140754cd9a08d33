// Files that may be zstd-compressed: reading them transparently (by content, not name) in bounded
// blocks, and compressing buffers and text output.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace glide::data {

// True when `bytes` starts with a zstd frame's magic number.
bool starts_with_zstd_magic(std::span<const std::uint8_t> bytes);

// A source of text read piece by piece: a plain file, a .zst file decompressed as a stream, or a
// buffer in memory. Errors (unreadable, truncated or corrupt compressed data) are glide::Error
// naming the source.
class TextSource {
 public:
  virtual ~TextSource() = default;
  // Appends up to about `max_bytes` to `out`; returns false once the source is exhausted (and
  // appended nothing).
  virtual bool read_more(std::string& out, std::size_t max_bytes) = 0;
  const std::string& name() const { return name_; }

 protected:
  explicit TextSource(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// Opens `path`, decompressing it if it is zstd data (whatever its name).
std::unique_ptr<TextSource> open_text_source(const std::string& path);
// A source over `text` (not copied: it must outlive the source); decompressed if it is zstd data.
std::unique_ptr<TextSource> memory_text_source(std::string_view text, const std::string& name);

// The whole content of a text source.
std::string read_all(TextSource& source);

// One zstd frame holding `data`, with a content checksum; `level` as for the zstd tool.
std::vector<std::uint8_t> zstd_compress(std::span<const std::uint8_t> data, int level);

// Writes text to a FILE, zstd-compressing it as a stream when `compress` is set. Call finish()
// before closing the file.
class TextSink {
 public:
  TextSink(std::FILE* file, bool compress, int level = 3);
  ~TextSink();
  TextSink(const TextSink&) = delete;
  TextSink& operator=(const TextSink&) = delete;
  void write(std::string_view text);
  void finish();

 private:
  void put(const void* data, std::size_t size);
  std::FILE* file_;
  struct Compressor;
  std::unique_ptr<Compressor> zstd_;
};

}  // namespace glide::data
