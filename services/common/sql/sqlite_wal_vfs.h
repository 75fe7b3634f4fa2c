// A SQLite VFS for the store's writer and checkpointer connections that
// gathers a commit's WAL writes, and a checkpoint's copies, into few write(2)s.
//
// SQLite appends each WAL frame with two pwrite calls (the 24-byte frame
// header, then the page), so a group commit of a few hundred pages made
// hundreds of system calls on the writer, the store's one serial thread.
// This VFS wraps the default one; for a file opened as a WAL it keeps
// consecutive writes in a buffer and writes them with one pwrite when
// anything could look at them:
//   - before the commit is published to other connections: SQLite writes
//     the new WAL-index header in two copies with a memory barrier
//     (xShmBarrier on the database file) between them, and readers ignore a
//     header whose copies differ; the buffer is written in that barrier, so
//     no reader can see a frame that is not yet in the file;
//   - before any read, size query, sync, truncation, file control or close
//     of the WAL, and before a write that does not continue the buffer.
// A failed write in the barrier, which cannot return an error, stops the
// process (as a failed fdatasync does): a published frame must be in the
// file. Durability is unchanged: the frames are written before COMMIT
// returns, and the completion thread's fdatasync comes after that.
//
// A checkpoint copies pages from the WAL into the database file with one
// pwrite per page, in page order; many are neighbours (the tables that grow
// at the file's end). Between SQLITE_FCNTL_CKPT_START and
// SQLITE_FCNTL_CKPT_DONE, the file controls SQLite sends a database file
// around that copy, consecutive writes to the database file are gathered
// the same way. They are written at CKPT_DONE, which SQLite sends "before
// the *-shm file is updated to record the fact that the pages have been
// checkpointed": until that record, readers take those pages from the WAL,
// not from this file. A failed write there (SQLite ignores the result) stops
// the process. The store's writer and checkpointer use this VFS; readers
// use the default one.
#ifndef CARESEAL_SERVICES_COMMON_SQL_SQLITE_WAL_VFS_H_
#define CARESEAL_SERVICES_COMMON_SQL_SQLITE_WAL_VFS_H_

#include <cstdint>

struct sqlite3;

namespace careseal::sql {

// The VFS name to pass to sqlite3_open_v2; registered on first use.
const char* CoalescingWalVfsName();

// Counters over all files of the VFS, for tests (sqlite_database_test).
struct WalVfsCounters {
  int64_t wal_writes = 0;         // xWrite calls SQLite made on WAL files
  int64_t checkpoint_writes = 0;  // ... on database files in a checkpoint
  int64_t file_writes = 0;  // writes this VFS passed on to the default VFS
};
WalVfsCounters WalVfsCountersNow();

// Writes what `db`'s WAL still buffers; true if nothing was left or it was
// written. The writer calls it after each COMMIT, before the completion
// thread's fdatasync (the publication barrier should have left nothing).
bool FlushWalBuffer(sqlite3* db);

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_SQLITE_WAL_VFS_H_
