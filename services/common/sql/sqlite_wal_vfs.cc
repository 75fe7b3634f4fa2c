#include "services/common/sql/sqlite_wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/common/sql/sqlite_config.h"

namespace careseal::sql {
namespace {

constexpr char kVfsName[] = "careseal-wal-coalesce";
// A commit's frames are written at once; a buffer this large is written
// early (a transaction that spills that much is rare).
constexpr size_t kMaxBuffered = size_t{4} << 20;

std::atomic<int64_t> wal_writes{0};
std::atomic<int64_t> checkpoint_writes{0};
std::atomic<int64_t> file_writes{0};

struct FileState {
  bool wal = false;
  bool main_db = false;
  // A main database file between SQLITE_FCNTL_CKPT_START and _CKPT_DONE:
  // a checkpoint is copying pages into it.
  bool in_checkpoint = false;
  std::string wal_name;  // a WAL's own name; a main database's WAL's name
  std::string buffer;    // consecutive bytes not yet written
  sqlite3_int64 buffer_offset = 0;
  // The thread that last wrote to the buffer. A connection writes its WAL
  // and publishes the commit on one thread, inside one sqlite3_step; with
  // two connections of this VFS on one file (two stores open at once), a
  // barrier writes only the buffer of the connection on its own thread.
  std::atomic<std::thread::id> writer{};
};

struct ShimFile {
  sqlite3_file base;   // base.pMethods == &kMethods once open
  sqlite3_file* real;  // the default VFS's file, right after this struct
  FileState* state;
};
static_assert(sizeof(ShimFile) % 8 == 0);

sqlite3_vfs* RealVfs() {
  static sqlite3_vfs* const real = [] {
    ConfigureSqlite();  // before sqlite3_vfs_find initializes SQLite
    return sqlite3_vfs_find(nullptr);
  }();
  return real;
}

ShimFile* Shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }

// Open WAL files of this VFS by name, for the database file's barrier.
absl::Mutex registry_mu;
absl::flat_hash_map<std::string, std::vector<ShimFile*>>& Registry() {
  static auto* const registry =
      new absl::flat_hash_map<std::string, std::vector<ShimFile*>>;
  return *registry;
}

// The default VFS writes at most 128 KiB - 1 per call (it masks the length
// to 17 bits and reports a write of 0 bytes as a full disk).
constexpr size_t kMaxWrite = size_t{64} << 10;

int Flush(ShimFile* f) {
  FileState& s = *f->state;
  int rc = SQLITE_OK;
  for (size_t done = 0; done < s.buffer.size() && rc == SQLITE_OK;) {
    const size_t n = std::min(kMaxWrite, s.buffer.size() - done);
    rc = f->real->pMethods->xWrite(
        f->real, s.buffer.data() + done, static_cast<int>(n),
        s.buffer_offset + static_cast<sqlite3_int64>(done));
    file_writes.fetch_add(1, std::memory_order_relaxed);
    done += n;
  }
  s.buffer.clear();
  return rc;
}

// A buffer is written before anything else is done to its file.
#define FLUSH_OR_RETURN(f)                        \
  do {                                            \
    if (!(f)->state->buffer.empty()) {            \
      const int flush_rc = Flush(f);              \
      if (flush_rc != SQLITE_OK) return flush_rc; \
    }                                             \
  } while (0)

// Where a write that failed cannot be reported (SQLite ignores the result,
// then tells other connections the bytes are there), the process stops.
void FlushOrDie(ShimFile* f, const char* when) {
  if (f->state->buffer.empty()) return;
  const int rc = Flush(f);
  if (rc != SQLITE_OK) {
    std::fprintf(stderr,
                 "careseal: a write failed %s (SQLite error %d); "
                 "stopping\n",
                 when, rc);
    std::abort();
  }
}

int ShimClose(sqlite3_file* file) {
  ShimFile* f = Shim(file);
  int rc = f->state->buffer.empty() ? SQLITE_OK : Flush(f);
  if (f->state->wal) {
    absl::MutexLock lock(&registry_mu);
    auto it = Registry().find(f->state->wal_name);
    if (it != Registry().end()) {
      std::erase(it->second, f);
      if (it->second.empty()) Registry().erase(it);
    }
  }
  const int close_rc = f->real->pMethods->xClose(f->real);
  delete f->state;
  f->state = nullptr;
  return rc != SQLITE_OK ? rc : close_rc;
}

int ShimRead(sqlite3_file* file, void* out, int n, sqlite3_int64 offset) {
  ShimFile* f = Shim(file);
  FLUSH_OR_RETURN(f);
  return f->real->pMethods->xRead(f->real, out, n, offset);
}

int ShimWrite(sqlite3_file* file, const void* data, int n,
              sqlite3_int64 offset) {
  ShimFile* f = Shim(file);
  FileState& s = *f->state;
  if (s.wal) {
    wal_writes.fetch_add(1, std::memory_order_relaxed);
  } else if (s.in_checkpoint) {
    checkpoint_writes.fetch_add(1, std::memory_order_relaxed);
  } else {
    FLUSH_OR_RETURN(f);
    return f->real->pMethods->xWrite(f->real, data, n, offset);
  }
  if (!s.buffer.empty() &&
      offset != s.buffer_offset + static_cast<sqlite3_int64>(s.buffer.size())) {
    const int rc = Flush(f);
    if (rc != SQLITE_OK) return rc;
  }
  if (s.buffer.empty()) {
    s.buffer_offset = offset;
    s.writer.store(std::this_thread::get_id(), std::memory_order_relaxed);
  }
  s.buffer.append(static_cast<const char*>(data), n);
  return s.buffer.size() >= kMaxBuffered ? Flush(f) : SQLITE_OK;
}

int ShimTruncate(sqlite3_file* file, sqlite3_int64 size) {
  ShimFile* f = Shim(file);
  FLUSH_OR_RETURN(f);
  return f->real->pMethods->xTruncate(f->real, size);
}

int ShimSync(sqlite3_file* file, int flags) {
  ShimFile* f = Shim(file);
  FLUSH_OR_RETURN(f);
  return f->real->pMethods->xSync(f->real, flags);
}

int ShimFileSize(sqlite3_file* file, sqlite3_int64* size) {
  ShimFile* f = Shim(file);
  FLUSH_OR_RETURN(f);
  return f->real->pMethods->xFileSize(f->real, size);
}

int ShimLock(sqlite3_file* file, int level) {
  return Shim(file)->real->pMethods->xLock(Shim(file)->real, level);
}

int ShimUnlock(sqlite3_file* file, int level) {
  return Shim(file)->real->pMethods->xUnlock(Shim(file)->real, level);
}

int ShimCheckReservedLock(sqlite3_file* file, int* out) {
  return Shim(file)->real->pMethods->xCheckReservedLock(Shim(file)->real, out);
}

int ShimFileControl(sqlite3_file* file, int op, void* arg) {
  ShimFile* f = Shim(file);
  FileState& s = *f->state;
  if (s.main_db && op == SQLITE_FCNTL_CKPT_START) {
    s.in_checkpoint = true;
  } else if (s.main_db && op == SQLITE_FCNTL_CKPT_DONE) {
    // The copy is over; SQLite records it in the WAL-index next, after which
    // readers take those pages from this file: they must be in it. (SQLite
    // ignores this call's result, so a failed write cannot be returned.)
    FlushOrDie(f, "copying a checkpoint into the database");
    s.in_checkpoint = false;
  } else {
    FLUSH_OR_RETURN(f);
  }
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

int ShimSectorSize(sqlite3_file* file) {
  return Shim(file)->real->pMethods->xSectorSize(Shim(file)->real);
}

int ShimDeviceCharacteristics(sqlite3_file* file) {
  return Shim(file)->real->pMethods->xDeviceCharacteristics(Shim(file)->real);
}

int ShimShmMap(sqlite3_file* file, int page, int size, int extend,
               void volatile** out) {
  ShimFile* f = Shim(file);
  return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

int ShimShmLock(sqlite3_file* file, int offset, int n, int flags) {
  ShimFile* f = Shim(file);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

// SQLite publishes a commit by writing the WAL-index header twice with this
// barrier between the copies; the connection's buffered frames reach the
// file here, before the second copy makes them visible.
void ShimShmBarrier(sqlite3_file* file) {
  ShimFile* f = Shim(file);
  if (!f->state->wal_name.empty()) {
    absl::MutexLock lock(&registry_mu);
    auto it = Registry().find(f->state->wal_name);
    if (it != Registry().end()) {
      for (ShimFile* wal : it->second) {
        if (wal->state->writer.load(std::memory_order_relaxed) !=
            std::this_thread::get_id()) {
          continue;
        }
        FlushOrDie(wal, "writing the WAL while publishing a commit");
      }
    }
  }
  f->real->pMethods->xShmBarrier(f->real);
}

int ShimShmUnmap(sqlite3_file* file, int delete_flag) {
  ShimFile* f = Shim(file);
  return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

int ShimFetch(sqlite3_file* file, sqlite3_int64 offset, int n, void** out) {
  ShimFile* f = Shim(file);
  FLUSH_OR_RETURN(f);
  return f->real->pMethods->xFetch(f->real, offset, n, out);
}

int ShimUnfetch(sqlite3_file* file, sqlite3_int64 offset, void* p) {
  ShimFile* f = Shim(file);
  return f->real->pMethods->xUnfetch(f->real, offset, p);
}

const sqlite3_io_methods kMethods = {
    3,
    ShimClose,
    ShimRead,
    ShimWrite,
    ShimTruncate,
    ShimSync,
    ShimFileSize,
    ShimLock,
    ShimUnlock,
    ShimCheckReservedLock,
    ShimFileControl,
    ShimSectorSize,
    ShimDeviceCharacteristics,
    ShimShmMap,
    ShimShmLock,
    ShimShmBarrier,
    ShimShmUnmap,
    ShimFetch,
    ShimUnfetch,
};

int ShimOpen(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags,
             int* out_flags) {
  ShimFile* f = Shim(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->state = nullptr;
  sqlite3_vfs* real = RealVfs();
  const int rc = real->xOpen(real, name, f->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    // The real file may still need closing (SQLite's rule for a failed
    // xOpen that set pMethods).
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    return rc;
  }
  if (f->real->pMethods->iVersion < 3) {
    f->real->pMethods->xClose(f->real);
    return SQLITE_CANTOPEN;
  }
  f->state = new FileState();
  if (name != nullptr && (flags & SQLITE_OPEN_WAL) != 0) {
    f->state->wal = true;
    f->state->wal_name = name;
    absl::MutexLock lock(&registry_mu);
    Registry()[f->state->wal_name].push_back(f);
  } else if (name != nullptr && (flags & SQLITE_OPEN_MAIN_DB) != 0) {
    f->state->main_db = true;
    f->state->wal_name = std::string(name) + "-wal";
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

// Everything but opening files is the default VFS's.
int ShimDelete(sqlite3_vfs*, const char* name, int sync_dir) {
  return RealVfs()->xDelete(RealVfs(), name, sync_dir);
}
int ShimAccess(sqlite3_vfs*, const char* name, int flags, int* out) {
  return RealVfs()->xAccess(RealVfs(), name, flags, out);
}
int ShimFullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return RealVfs()->xFullPathname(RealVfs(), name, n, out);
}
void* ShimDlOpen(sqlite3_vfs*, const char* name) {
  return RealVfs()->xDlOpen(RealVfs(), name);
}
void ShimDlError(sqlite3_vfs*, int n, char* out) {
  RealVfs()->xDlError(RealVfs(), n, out);
}
void (*ShimDlSym(sqlite3_vfs*, void* handle, const char* sym))(void) {
  return RealVfs()->xDlSym(RealVfs(), handle, sym);
}
void ShimDlClose(sqlite3_vfs*, void* handle) {
  RealVfs()->xDlClose(RealVfs(), handle);
}
int ShimRandomness(sqlite3_vfs*, int n, char* out) {
  return RealVfs()->xRandomness(RealVfs(), n, out);
}
int ShimSleep(sqlite3_vfs*, int micros) {
  return RealVfs()->xSleep(RealVfs(), micros);
}
int ShimCurrentTime(sqlite3_vfs*, double* out) {
  return RealVfs()->xCurrentTime(RealVfs(), out);
}
int ShimGetLastError(sqlite3_vfs*, int n, char* out) {
  return RealVfs()->xGetLastError(RealVfs(), n, out);
}
int ShimCurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
  return RealVfs()->xCurrentTimeInt64(RealVfs(), out);
}

}  // namespace

const char* CoalescingWalVfsName() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_vfs* real = RealVfs();
    static sqlite3_vfs vfs = {};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(ShimFile)) + real->szOsFile;
    vfs.mxPathname = real->mxPathname;
    vfs.zName = kVfsName;
    vfs.xOpen = ShimOpen;
    vfs.xDelete = ShimDelete;
    vfs.xAccess = ShimAccess;
    vfs.xFullPathname = ShimFullPathname;
    vfs.xDlOpen = ShimDlOpen;
    vfs.xDlError = ShimDlError;
    vfs.xDlSym = ShimDlSym;
    vfs.xDlClose = ShimDlClose;
    vfs.xRandomness = ShimRandomness;
    vfs.xSleep = ShimSleep;
    vfs.xCurrentTime = ShimCurrentTime;
    vfs.xGetLastError = ShimGetLastError;
    vfs.xCurrentTimeInt64 = ShimCurrentTimeInt64;
    if (sqlite3_vfs_register(&vfs, /*makeDflt=*/0) != SQLITE_OK) {
      std::fprintf(stderr, "careseal: cannot register the SQLite VFS\n");
      std::abort();
    }
  });
  return kVfsName;
}

WalVfsCounters WalVfsCountersNow() {
  return {wal_writes.load(std::memory_order_relaxed),
          checkpoint_writes.load(std::memory_order_relaxed),
          file_writes.load(std::memory_order_relaxed)};
}

bool FlushWalBuffer(sqlite3* db) {
  sqlite3_file* wal = nullptr;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) !=
          SQLITE_OK ||
      wal == nullptr || wal->pMethods != &kMethods) {
    return true;
  }
  ShimFile* f = Shim(wal);
  if (!f->state->wal || f->state->buffer.empty()) return true;
  return Flush(f) == SQLITE_OK;
}

}  // namespace careseal::sql
