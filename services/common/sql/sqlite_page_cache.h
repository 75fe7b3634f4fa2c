// A wrapper around SQLite's default page cache that skips the scan of the
// whole cache at the end of a write transaction when no page needs to go.
//
// At the end of every write transaction SQLite drops cached pages beyond the
// database's end (pager_end_transaction -> sqlite3PcacheTruncate). The
// default cache (pcache1) remembers the largest page number it ever held
// since its last truncation, and scans only if that number is past the end.
// But when a B-tree splits a page, SQLite renumbers the new pages into
// ascending order and parks one of them for a moment under the lock-byte
// page's number (262145 with 4 KiB pages, far past the end). pcache1 then
// believes a page beyond the end may be cached, and at COMMIT walks every
// hash bucket and every cached page: with the writer's 32 MiB cache, 8,192
// of each, about once per group commit. perf put that walk at about 8% of
// the writer thread's samples under send-message.
//
// The wrapper knows which pages could lie beyond the end. Since the cache's
// last truncation, pages were created up to some largest number, and some
// pages were renumbered to numbers at or above that truncation's limit (a
// superset: a page pcache1 dropped or recycled on its own may still count).
// A truncation is passed on to pcache1 only when one of those is at or above
// the new limit, or when the limit is lower than the last one (the database
// shrank or the cache is being cleared). Everything else goes straight to
// pcache1; a page fetch costs one comparison more.
#ifndef CARESEAL_SERVICES_COMMON_SQL_SQLITE_PAGE_CACHE_H_
#define CARESEAL_SERVICES_COMMON_SQL_SQLITE_PAGE_CACHE_H_

#include <cstdint>

namespace careseal::sql {

// Installs the wrapper as the process's SQLite page cache, once. It must run
// before SQLite initializes; it returns false (and SQLite keeps its default
// cache) if SQLite was already initialized.
bool InstallSqlitePageCache();

// Counters over all caches, for tests (sqlite_page_cache_test,
// sqlite_database_test).
struct PageCacheCounters {
  int64_t truncations = 0;  // xTruncate calls SQLite made
  int64_t passed_on = 0;    // ... that the wrapper passed on to pcache1
};
PageCacheCounters PageCacheCountersNow();

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_SQLITE_PAGE_CACHE_H_
