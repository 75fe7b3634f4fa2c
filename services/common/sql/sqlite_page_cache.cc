#include "services/common/sql/sqlite_page_cache.h"

#include <sqlite3.h>

#include <atomic>
#include <mutex>

#include "absl/container/flat_hash_set.h"

namespace careseal::sql {
namespace {

std::atomic<int64_t> truncations{0};
std::atomic<int64_t> passed_on{0};

// SQLite's default page cache, as it was before the wrapper was installed.
sqlite3_pcache_methods2 inner_methods;

// One per page cache (per connection and attached database). SQLite calls a
// cache's methods from the thread that uses its connection, one at a time.
struct Cache {
  sqlite3_pcache* inner = nullptr;
  // The limit of the last truncation: no page at or above it was cached
  // then.
  unsigned limit = 0;
  // The largest page number created since (new pages at the database's end
  // stay below the next limit).
  unsigned created_max = 0;
  // Page numbers at or above `limit` that a page was renumbered to since and
  // not renumbered away from (a split's parked page comes and goes here).
  absl::flat_hash_set<unsigned> renumbered;
};

Cache* Of(sqlite3_pcache* p) { return reinterpret_cast<Cache*>(p); }

sqlite3_pcache* Create(int page_size, int extra_size, int purgeable) {
  sqlite3_pcache* inner =
      inner_methods.xCreate(page_size, extra_size, purgeable);
  if (inner == nullptr) return nullptr;
  auto* cache = new (std::nothrow) Cache;
  if (cache == nullptr) {
    inner_methods.xDestroy(inner);
    return nullptr;
  }
  cache->inner = inner;
  return reinterpret_cast<sqlite3_pcache*>(cache);
}

void Cachesize(sqlite3_pcache* p, int pages) {
  inner_methods.xCachesize(Of(p)->inner, pages);
}

int Pagecount(sqlite3_pcache* p) {
  return inner_methods.xPagecount(Of(p)->inner);
}

sqlite3_pcache_page* Fetch(sqlite3_pcache* p, unsigned key, int create) {
  Cache* cache = Of(p);
  sqlite3_pcache_page* page = inner_methods.xFetch(cache->inner, key, create);
  // A page found without creating one was created or renumbered before.
  if (page != nullptr && create != 0 && key > cache->created_max) {
    cache->created_max = key;
  }
  return page;
}

void Unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  inner_methods.xUnpin(Of(p)->inner, page, discard);
}

void Rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned old_key,
           unsigned new_key) {
  Cache* cache = Of(p);
  inner_methods.xRekey(cache->inner, page, old_key, new_key);
  cache->renumbered.erase(old_key);
  if (new_key >= cache->limit) cache->renumbered.insert(new_key);
}

void Truncate(sqlite3_pcache* p, unsigned limit) {
  Cache* cache = Of(p);
  truncations.fetch_add(1, std::memory_order_relaxed);
  bool pass_on = limit < cache->limit || cache->created_max >= limit;
  for (auto it = cache->renumbered.begin();
       !pass_on && it != cache->renumbered.end(); ++it) {
    pass_on = *it >= limit;
  }
  if (pass_on) {
    passed_on.fetch_add(1, std::memory_order_relaxed);
    inner_methods.xTruncate(cache->inner, limit);
  }
  // No page at or above `limit` is cached now; those below it need no
  // tracking until a truncation with a lower limit, which is passed on.
  cache->renumbered.clear();
  cache->created_max = 0;
  cache->limit = limit;
}

void Destroy(sqlite3_pcache* p) {
  Cache* cache = Of(p);
  inner_methods.xDestroy(cache->inner);
  delete cache;
}

void Shrink(sqlite3_pcache* p) { inner_methods.xShrink(Of(p)->inner); }

}  // namespace

bool InstallSqlitePageCache() {
  static std::once_flag once;
  static bool installed = false;
  std::call_once(once, [] {
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner_methods) != SQLITE_OK) {
      return;
    }
    static sqlite3_pcache_methods2 methods;
    methods.iVersion = 1;
    methods.pArg = inner_methods.pArg;
    methods.xInit = inner_methods.xInit;
    methods.xShutdown = inner_methods.xShutdown;
    methods.xCreate = Create;
    methods.xCachesize = Cachesize;
    methods.xPagecount = Pagecount;
    methods.xFetch = Fetch;
    methods.xUnpin = Unpin;
    methods.xRekey = Rekey;
    methods.xTruncate = Truncate;
    methods.xDestroy = Destroy;
    methods.xShrink = Shrink;
    installed = sqlite3_config(SQLITE_CONFIG_PCACHE2, &methods) == SQLITE_OK;
  });
  return installed;
}

PageCacheCounters PageCacheCountersNow() {
  return {truncations.load(std::memory_order_relaxed),
          passed_on.load(std::memory_order_relaxed)};
}

}  // namespace careseal::sql
