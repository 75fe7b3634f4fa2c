// jemalloc's compiled-in options for CareSeal's serving processes (linked
// only with jemalloc; see careseal_use_jemalloc). The environment's
// MALLOC_CONF still overrides them.
//
// dirty_decay_ms:1000 returns freed pages to the kernel after about a
// second instead of jemalloc's default 10 s. At 256 calls in flight the
// default let RSS spike by 20-40% over its steady level; with 1 s, RSS by
// tenths of a 2-minute run stays within about ±5% of its mean (short spikes
// remain in one-second samples), at no cost in throughput above this
// machine's noise (docs/PERFORMANCE.md, sessions 5 and 6).
extern "C" {
// NOLINTNEXTLINE: the name jemalloc looks up.
const char* malloc_conf = "dirty_decay_ms:1000";
}
