#include "services/common/sql/sqlite_config.h"

#include <sqlite3.h>

#include <mutex>

#include "services/common/sql/sqlite_page_cache.h"

namespace careseal::sql {

bool ConfigureSqlite() {
  static std::once_flag once;
  static bool configured = false;
  std::call_once(once, [] {
    configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK &&
                 InstallSqlitePageCache();
  });
  return configured;
}

}  // namespace careseal::sql
