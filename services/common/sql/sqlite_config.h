// Process-wide SQLite settings, applied once before SQLite initializes.
#ifndef CARESEAL_SERVICES_COMMON_SQL_SQLITE_CONFIG_H_
#define CARESEAL_SERVICES_COMMON_SQL_SQLITE_CONFIG_H_

namespace careseal::sql {

// Applies, once per process, before SQLite's first initialization:
//   - no memory statistics (SQLITE_CONFIG_MEMSTATUS off): SQLite otherwise
//     takes a process-wide mutex in every malloc and free to count bytes,
//     5% of the writer thread's samples under send-message; nothing here
//     reads those counts (sqlite3_memory_used, soft heap limits);
//   - the page cache wrapper of sqlite_page_cache.h.
// Returns false if SQLite was initialized before (it then keeps its
// defaults, which are correct, only slower).
bool ConfigureSqlite();

}  // namespace careseal::sql

#endif  // CARESEAL_SERVICES_COMMON_SQL_SQLITE_CONFIG_H_
