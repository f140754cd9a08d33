#include "common/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace glide {

namespace {

// The process id in a temporary file's name suffix ("123" or "check.123"), or 0 when the suffix
// is not one this file makes.
pid_t temporary_owner(const std::string& suffix) {
  std::string digits = suffix;
  if (digits.rfind("check.", 0) == 0) digits.erase(0, 6);
  if (digits.empty() || digits.size() > 10) return 0;
  long long pid = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    pid = pid * 10 + (c - '0');
  }
  return pid > 0 && pid <= INT_MAX ? static_cast<pid_t>(pid) : 0;
}

}  // namespace

void remove_stale_temporaries(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const std::string prefix = path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;  // the write that follows reports an unusable folder
  while (const dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const pid_t owner = temporary_owner(name.substr(prefix.size()));
    // Only a process known to be gone: a live one (ESRCH not returned, EPERM included) may be
    // writing its file right now.
    if (owner == 0 || owner == ::getpid()) continue;
    if (::kill(owner, 0) == -1 && errno == ESRCH) ::unlinkat(::dirfd(d), name.c_str(), 0);
  }
  ::closedir(d);
}

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write) {
  // A process killed mid-write left its temporary file; the next save of the same file clears it.
  remove_stale_temporaries(path);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, std::string("cannot create temporary file: ") + std::strerror(errno));
  try {
    write(f);
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  const bool ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    fail(path, std::string("write failed: ") + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int rerr = errno;
    std::remove(tmp.c_str());
    fail(path, std::string("cannot rename temporary file: ") + std::strerror(rerr));
  }
}

void check_writable(const std::string& path, const std::string& flag) {
  const std::string where = path + " (" + flag + ")";
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    fail(where, "is a directory; give a file name");
  const std::string probe = path + ".tmp.check." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) fail(where, std::string("cannot write here: ") + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string rescue_path(const std::string& path) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp && *tmp ? tmp : "/tmp";
  const std::string name = path.substr(path.find_last_of('/') + 1);
  return dir + "/glide-rescued-" + std::to_string(::getpid()) + "-" +
         (name.empty() ? std::string("model") : name);
}

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  const bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail(path, "read error");
  return out;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace glide
