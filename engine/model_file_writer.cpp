// Writing model files (engine/model_file.h; the layout: docs/model-format.md).
#include <tbb/enumerable_thread_specific.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/error.h"
#include "common/file_util.h"
#include "engine/byte_planes.h"
#include "engine/checksum.h"
#include "engine/model_file.h"
#include "engine/model_file_format.h"

namespace glide::engine {

using namespace model_format;

namespace {

void write_all(std::FILE* f, const void* data, std::size_t n, const std::string& path) {
  if (n && std::fwrite(data, 1, n, f) != n)
    fail(path, std::string("write failed: ") + std::strerror(errno));
}

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// The chunk's bytes as `encoding` stores them before zstd (`scratch` holds them when they are
// transformed).
std::span<const std::byte> transformed(std::span<const std::byte> chunk, std::uint32_t encoding,
                                       std::size_t width, std::vector<std::byte>& scratch) {
  if (encoding == kEncodingZstd) return chunk;
  std::vector<std::byte> deltas;
  std::span<const std::byte> planes_of = chunk;
  if (encoding == kEncodingDeltaPlanes) {
    deltas.assign(chunk.begin(), chunk.end());
    delta_encode(deltas, width);
    planes_of = deltas;
  }
  scratch.resize(chunk.size());
  split_byte_planes(planes_of, width, scratch);
  return scratch;
}

// Compresses one chunk into `out` as chunk header + payload; stores it raw when zstd does not
// make it smaller (random weights), so reading such chunks is a plain copy.
void encode_chunk(ZSTD_CCtx* cctx, int level, std::span<const std::byte> chunk,
                  std::uint32_t encoding, std::size_t width, std::vector<std::byte>& scratch,
                  std::vector<std::byte>& out, std::string& error) {
  const std::span<const std::byte> input = transformed(chunk, encoding, width, scratch);
  out.resize(kChunkHeaderBytes + ZSTD_compressBound(chunk.size()));
  std::size_t n =
      ZSTD_compressCCtx(cctx, out.data() + kChunkHeaderBytes, out.size() - kChunkHeaderBytes,
                        input.data(), input.size(), level);
  if (ZSTD_isError(n)) {
    error = ZSTD_getErrorName(n);
    return;
  }
  if (n >= chunk.size()) {
    encoding = kEncodingRaw;
    n = chunk.size();
    std::memcpy(out.data() + kChunkHeaderBytes, chunk.data(), n);
  }
  out.resize(kChunkHeaderBytes + n);
  for (int i = 0; i < 4; ++i) {
    out[i] = std::byte(static_cast<std::uint8_t>(n >> (8 * i)));
    out[4 + i] = std::byte(static_cast<std::uint8_t>(encoding >> (8 * i)));
  }
}

// The encoding that compresses a sample of the section (its first 256 KiB) smallest: plain zstd,
// byte planes or deltas' byte planes, as its dtype allows (ties: the simpler). A few
// milliseconds a section; every chunk then takes it.
std::uint32_t choose_encoding(ZSTD_CCtx* cctx, int level, std::span<const std::byte> data,
                              DType dtype) {
  constexpr std::size_t kSampleBytes = 256 << 10, kMinBytes = 4096;
  const std::size_t width = plane_width(dtype);
  if (width == 0 || data.size() < kMinBytes) return kEncodingZstd;
  const std::span<const std::byte> sample = data.first(std::min(data.size(), kSampleBytes));
  std::vector<std::byte> scratch, out(ZSTD_compressBound(sample.size()));
  std::uint32_t best = kEncodingZstd;
  std::size_t best_size = ~std::size_t{0};
  for (const std::uint32_t e : {kEncodingZstd, kEncodingPlanes, kEncodingDeltaPlanes}) {
    if (e == kEncodingDeltaPlanes && !deltas_allowed(dtype)) continue;
    const std::span<const std::byte> input = transformed(sample, e, width, scratch);
    const std::size_t n =
        ZSTD_compressCCtx(cctx, out.data(), out.size(), input.data(), input.size(), level);
    if (!ZSTD_isError(n) && n < best_size) {
      best = e;
      best_size = n;
    }
  }
  return best;
}

}  // namespace

ModelFileWriter::ModelFileWriter(std::string path, ModelFileWriteOptions options)
    : path_(std::move(path)), options_(std::move(options)) {
  if (options_.chunk_bytes == 0 || options_.chunk_bytes > kMaxChunkBytes)
    fail(path_, "chunk size must be between 1 byte and 64 MiB, got " +
                    std::to_string(options_.chunk_bytes));
  options_.threads = std::clamp(options_.threads, 0, 256);
  options_.zstd_level = std::clamp(options_.zstd_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
}

void ModelFileWriter::check_new_name(const std::string& name) const {
  if (name.empty()) fail(path_, "section names must not be empty");
  if (name.size() > kMaxNameBytes)
    fail(path_, "section name longer than " + std::to_string(kMaxNameBytes) + " bytes");
  for (const Pending& p : sections_)
    if (p.info.name == name) fail(path_, "section " + quoted_name(name) + " added twice");
}

void ModelFileWriter::add(std::string name, DType dtype, std::vector<std::uint64_t> shape,
                          std::span<const std::byte> data) {
  check_new_name(name);
  if (static_cast<std::uint8_t>(dtype) >= kDTypeCount) fail(path_, "invalid dtype");
  if (shape.size() > kMaxRank)
    fail(path_, "section " + quoted_name(name) + " has " + std::to_string(shape.size()) +
                    " dims; at most 4 are supported");
  std::uint64_t bytes = 0;
  if (!shape_bytes(shape, dtype_size(dtype), bytes) || bytes != data.size())
    fail(path_, "section " + quoted_name(name) + ": " + std::to_string(data.size()) +
                    " bytes of data do not match shape " + shape_string(shape) + " of " +
                    dtype_name(dtype));
  Pending p;
  p.info = {std::move(name), dtype, std::move(shape), bytes, 0};
  p.data = data;
  sections_.push_back(std::move(p));
}

void ModelFileWriter::add_bytes(std::string name, std::span<const std::byte> data) {
  std::vector<std::byte> copy(data.begin(), data.end());
  add(std::move(name), DType::kBytes, {copy.size()}, copy);
  // Moving a vector keeps its buffer, so the span taken by add() stays valid.
  sections_.back().owned = std::move(copy);
}

void ModelFileWriter::add_json(std::string name, std::string_view json) {
  const auto bytes = std::as_bytes(std::span(json.data(), json.size()));
  add_bytes(std::move(name), bytes);
  sections_.back().info.dtype = DType::kJson;
}

void ModelFileWriter::commit() {
  // The table of contents has a fixed size given the names, so it is reserved up front and
  // filled in once the compressed sizes are known: it then sits before the payloads, where it
  // survives truncation and lets the reader name the section that was cut off.
  std::uint64_t toc_bytes = 0;
  for (const Pending& p : sections_) toc_bytes += kTocEntryFixedBytes + p.info.name.size();
  const std::uint64_t payload_start = kHeaderBytes + toc_bytes;

  struct Placed {
    std::uint64_t offset = 0, stored = 0, checksum = 0;
  };
  std::vector<Placed> placed(sections_.size());

  write_file_atomic(path_, [&](std::FILE* f) {
    const std::vector<std::byte> zeros(payload_start);
    write_all(f, zeros.data(), zeros.size(), path_);

    // Chunks are compressed a batch at a time, in parallel, and written in order: memory stays
    // bounded by about two chunks per thread however large the tensor.
    const std::size_t threads = static_cast<std::size_t>(
        options_.threads > 0
            ? options_.threads
            : std::min<std::size_t>(
                  static_cast<std::size_t>(tbb::this_task_arena::max_concurrency()),
                  tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism)));
    const auto cctx_of = [&] {
      std::unique_ptr<ZSTD_CCtx, CCtxDeleter> c(ZSTD_createCCtx());
      if (!c) throw std::bad_alloc();
      return c;
    };
    tbb::enumerable_thread_specific<std::unique_ptr<ZSTD_CCtx, CCtxDeleter>> cctxs(cctx_of);
    tbb::enumerable_thread_specific<std::vector<std::byte>> scratches;
    std::vector<std::vector<std::byte>> encoded(threads);
    std::vector<std::string> errors(threads);
    bool needs_version_2 = false;

    std::uint64_t offset = payload_start;
    for (std::size_t s = 0; s < sections_.size(); ++s) {
      const Pending& p = sections_[s];
      const std::span<const std::byte> data = p.data;
      placed[s].offset = offset;
      placed[s].checksum = xxh64(data);
      const std::uint32_t encoding =
          options_.byte_planes
              ? choose_encoding(cctxs.local().get(), options_.zstd_level, data, p.info.dtype)
              : kEncodingZstd;
      const std::size_t width = plane_width(p.info.dtype);
      const std::uint64_t chunks = chunk_count(data.size(), options_.chunk_bytes);
      for (std::uint64_t first = 0; first < chunks; first += threads) {
        const auto batch =
            static_cast<std::size_t>(std::min<std::uint64_t>(threads, chunks - first));
        tbb::parallel_for(std::size_t{0}, batch, [&](std::size_t t) {
          const std::uint64_t begin = (first + t) * options_.chunk_bytes;
          const std::uint64_t size =
              std::min<std::uint64_t>(options_.chunk_bytes, data.size() - begin);
          try {
            encode_chunk(cctxs.local().get(), options_.zstd_level, data.subspan(begin, size),
                         encoding, width, scratches.local(), encoded[t], errors[t]);
          } catch (const std::exception& e) {  // e.g. bad_alloc: must not cross the parallel loop
            errors[t] = e.what();
          }
        });
        for (std::size_t t = 0; t < batch; ++t) {
          if (!errors[t].empty())
            fail(path_, "compressing section " + quoted_name(p.info.name) + ": " + errors[t]);
          needs_version_2 |= static_cast<std::uint8_t>(encoded[t][4]) >= kEncodingPlanes;
          write_all(f, encoded[t].data(), encoded[t].size(), path_);
          offset += encoded[t].size();
        }
      }
      placed[s].stored = offset - placed[s].offset;
      if (options_.on_section_written)
        options_.on_section_written(p.info.name, s + 1, sections_.size());
    }
    const std::uint64_t file_bytes = offset;

    ByteSink toc;
    for (std::size_t s = 0; s < sections_.size(); ++s) {
      const TensorInfo& info = sections_[s].info;
      toc.u16(static_cast<std::uint16_t>(info.name.size()));
      toc.raw(info.name.data(), info.name.size());
      toc.u8(static_cast<std::uint8_t>(info.dtype));
      toc.u8(static_cast<std::uint8_t>(info.shape.size()));
      toc.u32(0);  // flags: none defined in version 1
      for (std::size_t d = 0; d < kMaxRank; ++d) toc.u64(d < info.shape.size() ? info.shape[d] : 0);
      toc.u64(placed[s].offset);
      toc.u64(placed[s].stored);
      toc.u64(info.raw_bytes);
      toc.u32(options_.chunk_bytes);
      toc.u64(placed[s].checksum);
    }

    ByteSink header;
    header.raw(kMagic, sizeof kMagic);
    header.u32(needs_version_2 ? kFormatVersion : kFormatVersionPlain);
    header.u32(kHeaderBytes);
    header.u64(file_bytes);
    header.u64(kHeaderBytes);  // table of contents offset
    header.u64(toc.bytes().size());
    header.u32(static_cast<std::uint32_t>(sections_.size()));
    header.u32(0);  // flags: none defined in version 1
    header.u64(xxh64(toc.bytes()));
    header.u64(xxh64(header.bytes()));

    if (std::fseek(f, 0, SEEK_SET) != 0)
      fail(path_, std::string("seek failed: ") + std::strerror(errno));
    write_all(f, header.bytes().data(), header.bytes().size(), path_);
    write_all(f, toc.bytes().data(), toc.bytes().size(), path_);
  });
}

// ================================ Reader ================================

}  // namespace glide::engine
