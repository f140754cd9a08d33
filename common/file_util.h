// File helpers: atomic writes and whole-file reads with clear errors.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace glide {

// Writes a file atomically: `write` fills a temporary file beside `path`, which is flushed,
// fsync'ed and renamed over `path`. A crash leaves either the old file or the new one, never a
// half-written one. Throws glide::Error naming the path on failure. Temporary files of `path`
// left by processes that no longer run are removed first (remove_stale_temporaries).
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);

// Removes the temporary files beside `path` that write_file_atomic and check_writable name
// "PATH.tmp.PID" and "PATH.tmp.check.PID", for each PID that is no running process (a write
// killed before its rename). Files of running processes, and other names, are kept. Best effort:
// nothing is reported.
void remove_stale_temporaries(const std::string& path);

// Throws glide::Error "PATH: cannot write here (FLAG): ..." unless a file can be written at
// `path` (creates and removes a temporary file beside it), so that a long job learns before it
// starts, not when it saves, that its output cannot be written.
void check_writable(const std::string& path, const std::string& flag);

// Where to save work that could not be written to `path`: a new name in $TMPDIR (or /tmp).
std::string rescue_path(const std::string& path);

// Reads a whole file into memory. Throws glide::Error naming the path.
std::vector<std::uint8_t> read_file_bytes(const std::string& path);

bool ends_with(const std::string& s, const std::string& suffix);

}  // namespace glide
