// careseal-bench: closed-loop load over mutual TLS through CareSeal's public
// contracts, each scenario compared with an echo ceiling measured in the
// same run on the same ServerHost. See docs/PERFORMANCE.md.
//
//   careseal-bench --scenario=sign-consent --seconds=10 --inflight=64
//   careseal-bench --scenario=all --spawn_server --consents=1000000
//   careseal-bench --scenario=sign-consent --postgres="host=... dbname=..."
//     (the server on PostgreSQL; an empty database, or the same --state_dir
//     as the run that seeded it)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "bench/load.h"
#include "bench/scenarios.h"
#include "bench/seed.h"
#include "bench/server_fixture.h"
#include "clients/cpp/client.h"
#include "clients/cpp/consent_client.h"
#include "services/common/grpc/server_main.h"

ABSL_FLAG(std::string, scenario, "all",
          "echo, check-consent, sign-consent, send-message, "
          "submit-followup, clinic-day (60% check-consent, 20% send-message, "
          "10% submit-followup, 10% sign-consent), a comma-separated list of "
          "these, or all; echo always runs first as the ceiling");
ABSL_FLAG(double, seconds, 10, "measured seconds per scenario");
ABSL_FLAG(double, warmup_seconds, 2, "unmeasured seconds before each window");
ABSL_FLAG(int, inflight, 64, "calls outstanding at all times (closed loop)");
ABSL_FLAG(int, channels, 1,
          "client channels per identity, each its own TCP connection");
ABSL_FLAG(std::string, target, "",
          "host:port of a running server; empty: start one (see "
          "--spawn_server)");
ABSL_FLAG(bool, spawn_server, false,
          "run the server as a child process (careseal-server's main plus the "
          "echo service) and read its CPU and peak RSS from /proc; default: "
          "in this process");
ABSL_FLAG(int64_t, consents, 1000,
          "signed consents (one per patient) that check-consent reads among; "
          "seeded through the store in big transactions");
ABSL_FLAG(int64_t, sign_pool, 0,
          "pending consents requested (through RequestConsent) before "
          "sign-consent; 0: 7000 per second of warm-up and window");
ABSL_FLAG(std::string, certs_dir, "",
          "certs-example layout (ca.crt, server.*, ehr-demo.*, portal.*); "
          "empty: made with certs-example/gen-certs.sh in the state dir");
ABSL_FLAG(std::string, state_dir, "",
          "server state (database, keys); kept and reused (seeding is "
          "incremental); empty: a temporary directory removed at exit");
ABSL_FLAG(std::string, server_name_override, "",
          "TLS name to expect from a --target server (default: its host)");
ABSL_FLAG(int, echo_bytes, 64, "payload of each echo call");
ABSL_FLAG(int, rss_sample_ms, 1000, "how often the server's RSS is sampled");
ABSL_FLAG(bool, serve_child, false,
          "internal: run as the child server of --spawn_server");

namespace careseal::bench {
namespace {

constexpr char kEhrUri[] =
    "spiffe://careseal.local/tenant/demo-clinic/ehr/demo-ehr";
constexpr const char* kScenarios[] = {
    "echo",         "check-consent",   "sign-consent",
    "send-message", "submit-followup", "clinic-day"};

double ClientCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string CpuModel() {
  for (absl::string_view line : absl::StrSplit(Slurp("/proc/cpuinfo"), '\n')) {
    if (absl::StartsWith(line, "model name")) {
      return std::string(
          absl::StripAsciiWhitespace(line.substr(line.find(':') + 1)));
    }
  }
  return "unknown";
}

double Mb(int64_t bytes) { return bytes / (1024.0 * 1024.0); }

struct Measurement {
  std::string scenario;
  LoadResult load;
  double server_cpu = -1;  // seconds in the window; -1: unknown
  double client_cpu = 0;
  std::optional<ProcessSample> end;
  int64_t rss_first = 0, rss_last = 0, rss_min = 0, rss_max = 0;
  std::vector<int64_t> rss_samples;  // every sample of the window, in order
};

// Samples the server's RSS while a window is open.
class RssSampler {
 public:
  RssSampler(std::optional<pid_t> pid, absl::Duration every)
      : pid_(pid), every_(every) {}
  void Start(Measurement* m) {
    if (!pid_) return;
    thread_ = std::thread([this, m] {
      do {
        auto s = SampleProcess(*pid_);
        if (!s.ok()) continue;
        if (m->rss_first == 0) m->rss_first = m->rss_min = s->rss_bytes;
        m->rss_last = s->rss_bytes;
        m->rss_min = std::min(m->rss_min, s->rss_bytes);
        m->rss_max = std::max(m->rss_max, s->rss_bytes);
        m->rss_samples.push_back(s->rss_bytes);
      } while (!stop_.WaitForNotificationWithTimeout(every_));
    });
  }
  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    stop_.Notify();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::optional<pid_t> pid_;
  absl::Duration every_;
  absl::Notification stop_;
  bool stopped_ = false;  // Stop() is idempotent
  std::thread thread_;
};

Measurement Measure(const std::string& name, CallSource& source,
                    const ServerUnderTest& server) {
  Measurement m;
  m.scenario = name;
  const std::optional<pid_t> pid = server.pid();
  std::optional<ProcessSample> before;
  double client_before = 0;
  RssSampler rss(pid, absl::Milliseconds(absl::GetFlag(FLAGS_rss_sample_ms)));
  LoadHooks hooks;
  hooks.on_window_start = [&] {
    client_before = ClientCpuSeconds();
    if (pid) {
      auto s = SampleProcess(*pid);
      if (s.ok()) before = *s;
    }
    rss.Start(&m);
  };
  hooks.on_window_end = [&] {
    m.client_cpu = ClientCpuSeconds() - client_before;
    if (pid) {
      auto s = SampleProcess(*pid);
      if (s.ok()) {
        m.end = *s;
        if (before) m.server_cpu = s->cpu_seconds - before->cpu_seconds;
      }
    }
    rss.Stop();
  };
  std::fprintf(stderr, "running %s ...\n", name.c_str());
  m.load = RunForDuration(source, absl::GetFlag(FLAGS_inflight),
                          absl::Seconds(absl::GetFlag(FLAGS_warmup_seconds)),
                          absl::Seconds(absl::GetFlag(FLAGS_seconds)), hooks);
  rss.Stop();
  return m;
}

void Report(const Measurement& m, const ServerUnderTest& server) {
  const LoadResult& r = m.load;
  std::printf(
      "\n== %s: %d in flight, %d channel(s) per identity, %.1f s "
      "measured\n",
      m.scenario.c_str(), absl::GetFlag(FLAGS_inflight),
      absl::GetFlag(FLAGS_channels), r.seconds);
  std::printf("   calls: %lld ok, %lld errors -> %.0f calls/s%s\n",
              static_cast<long long>(r.ok), static_cast<long long>(r.errors),
              r.CallsPerSecond(),
              r.source_exhausted ? " (pool used up: window ended early)" : "");
  if (r.errors > 0) {
    std::printf("   first error: %s\n", r.first_error.c_str());
  }
  std::printf("   latency ms: p50 %.2f  p99 %.2f  p99.9 %.2f\n",
              r.PercentileMs(0.50), r.PercentileMs(0.99),
              r.PercentileMs(0.999));
  const double calls = static_cast<double>(r.ok + r.errors);
  if (calls > 0 && m.server_cpu >= 0) {
    if (server.shares_process_with_client()) {
      std::printf(
          "   process CPU per call: %.1f us (client AND server: they "
          "share this process)\n",
          1e6 * m.server_cpu / calls);
    } else {
      std::printf(
          "   server CPU per call: %.1f us (/proc/%d/stat); client "
          "CPU per call: %.1f us\n",
          1e6 * m.server_cpu / calls, *server.pid(),
          1e6 * m.client_cpu / calls);
    }
  } else if (calls > 0) {
    std::printf("   client CPU per call: %.1f us (server not observed)\n",
                1e6 * m.client_cpu / calls);
  }
  if (m.end) {
    std::printf(
        "   %s RSS: peak (VmHWM) %.1f MB; in the window %.1f .. %.1f "
        "MB (first %.1f, last %.1f)\n",
        server.shares_process_with_client() ? "process" : "server",
        Mb(m.end->hwm_bytes), Mb(m.rss_min), Mb(m.rss_max), Mb(m.rss_first),
        Mb(m.rss_last));
    // The course of RSS over the window, in tenths: flat or still growing?
    if (m.rss_samples.size() >= 10) {
      std::string tenths;
      for (int k = 1; k <= 10; ++k) {
        const size_t at = m.rss_samples.size() * k / 10 - 1;
        absl::StrAppend(&tenths, k > 1 ? " " : "",
                        absl::StrFormat("%.1f", Mb(m.rss_samples[at])));
      }
      std::printf("   RSS at each tenth of the window (MB): %s\n",
                  tenths.c_str());
      // One sample can land on a burst of calls or just before the
      // allocator returns freed pages; the mean of each tenth's samples
      // shows the trend (growth would be a leak), and how far each tenth is
      // from the mean of all of them.
      std::vector<double> means;
      double all = 0;
      for (int k = 0; k < 10; ++k) {
        const size_t from = m.rss_samples.size() * k / 10;
        const size_t to = m.rss_samples.size() * (k + 1) / 10;
        double sum = 0;
        for (size_t i = from; i < to; ++i) sum += Mb(m.rss_samples[i]);
        means.push_back(sum / static_cast<double>(to - from));
        all += means.back() / 10;
      }
      std::string course;
      double low = 0, high = 0;
      for (int k = 0; k < 10; ++k) {
        const double off = 100 * (means[k] - all) / all;
        low = std::min(low, off);
        high = std::max(high, off);
        absl::StrAppend(&course, k > 0 ? " " : "",
                        absl::StrFormat("%.1f", means[k]));
      }
      std::printf(
          "   RSS mean of each tenth (MB): %s; %+.1f%% .. %+.1f%% of their "
          "mean %.1f\n",
          course.c_str(), low, high, all);
    }
  }
}

int64_t ReadSeeded(const std::string& dir) {
  int64_t n = 0;
  std::string text = Slurp(absl::StrCat(dir, "/seeded-consents"));
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &n) ? n : 0;
}

void WriteSeeded(const std::string& dir, int64_t n) {
  std::ofstream(absl::StrCat(dir, "/seeded-consents")) << n << "\n";
}

struct Connected {
  std::vector<std::shared_ptr<grpc::Channel>> ehr;
  std::vector<std::shared_ptr<grpc::Channel>> portal;
  std::vector<std::shared_ptr<grpc::Channel>> clinician;
  void Clear() {
    ehr.clear();
    portal.clear();
    clinician.clear();
  }
};

absl::StatusOr<Connected> ConnectAll(const ServerUnderTest& server,
                                     const std::string& certs,
                                     const std::string& name_override) {
  auto ehr_id = LoadIdentity(certs, "ehr-demo");
  auto portal_id = LoadIdentity(certs, "portal");
  auto clinician_id = LoadIdentity(certs, "clinician-demo");
  if (!ehr_id.ok()) return ehr_id.status();
  if (!portal_id.ok()) return portal_id.status();
  if (!clinician_id.ok()) return clinician_id.status();
  const int n = absl::GetFlag(FLAGS_channels);
  Connected c;
  auto ehr = Connect(server.target(), *ehr_id, n, name_override);
  if (!ehr.ok()) return ehr.status();
  auto portal = Connect(server.target(), *portal_id, n, name_override);
  if (!portal.ok()) return portal.status();
  auto clinician = Connect(server.target(), *clinician_id, n, name_override);
  if (!clinician.ok()) return clinician.status();
  c.ehr = *std::move(ehr);
  c.portal = *std::move(portal);
  c.clinician = *std::move(clinician);
  return c;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "careseal-bench: %s\n", status.ToString().c_str());
  return 1;
}

int Run(const std::string& self) {
  std::vector<std::string> wanted;
  const std::string scenario_flag = absl::GetFlag(FLAGS_scenario);
  if (scenario_flag == "all") {
    wanted.assign(std::begin(kScenarios), std::end(kScenarios));
  } else {
    wanted = absl::StrSplit(scenario_flag, ',', absl::SkipEmpty());
  }
  for (const std::string& s : wanted) {
    if (std::find(std::begin(kScenarios), std::end(kScenarios), s) ==
        std::end(kScenarios)) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "unknown scenario '", s,
          "'; offered: ", absl::StrJoin(kScenarios, ", "), ", all")));
    }
  }
  if (wanted.empty() || wanted.front() != "echo") {
    wanted.erase(std::remove(wanted.begin(), wanted.end(), "echo"),
                 wanted.end());
    wanted.insert(wanted.begin(), "echo");
  }
  auto wants = [&](absl::string_view s) {
    return std::find(wanted.begin(), wanted.end(), s) != wanted.end();
  };
  const int64_t consents = absl::GetFlag(FLAGS_consents);
  // Scenarios that read among the seeded patients.
  const bool needs_seed =
      wants("check-consent") || wants("clinic-day") || wants("submit-followup");
  if (needs_seed && consents <= 0) {
    return Fail(absl::InvalidArgumentError("--consents must be positive"));
  }

  std::printf("careseal-bench: %u CPUs (%s); load average before: %s",
              std::thread::hardware_concurrency(), CpuModel().c_str(),
              Slurp("/proc/loadavg").c_str());

  const std::string target = absl::GetFlag(FLAGS_target);
  const bool local = target.empty();
  std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  const bool temporary = local && state_dir.empty();
  if (temporary) {
    char pattern[] = "/tmp/careseal-bench.XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      return Fail(absl::InternalError("mkdtemp failed"));
    }
    state_dir = pattern;
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) std::filesystem::remove_all(dir, ec);
    }
  } cleanup{temporary ? state_dir : ""};

  std::string certs = absl::GetFlag(FLAGS_certs_dir);
  if (certs.empty()) {
    if (!local) {
      return Fail(absl::InvalidArgumentError(
          "--target needs --certs_dir (e.g. certs-example/out)"));
    }
    certs = absl::StrCat(state_dir, "/certs");
    if (absl::Status s = MakeDevPki(CARESEAL_GEN_CERTS, certs); !s.ok()) {
      return Fail(s);
    }
  }
  std::string name_override = absl::GetFlag(FLAGS_server_name_override);
  if (local) name_override = "localhost";

  std::optional<ServerFiles> files;
  auto start_server =
      [&]() -> absl::StatusOr<std::unique_ptr<ServerUnderTest>> {
    if (!local) return Remote(target);
    if (absl::GetFlag(FLAGS_spawn_server)) return SpawnChild(*files, self);
    return StartInProcess(*files);
  };
  if (local) {
    auto f = PrepareStateDir(state_dir, certs);
    if (!f.ok()) return Fail(f.status());
    files = *f;
  }
  auto server = start_server();
  if (!server.ok()) return Fail(server.status());
  auto connected = ConnectAll(**server, certs, name_override);
  if (!connected.ok()) return Fail(connected.status());
  auto document = EnsureTemplate(connected->ehr[0]);
  if (!document.ok()) return Fail(document.status());

  // check-consent reads among `consents` signed consents.
  if (needs_seed && local) {
    const int64_t seeded = ReadSeeded(state_dir);
    if (seeded < consents) {
      std::fprintf(stderr, "seeding consents %lld..%lld through the store\n",
                   static_cast<long long>(seeded),
                   static_cast<long long>(consents));
      connected->Clear();
      server->reset();  // the store is seeded with no server running
      if (absl::Status s =
              SeedSignedConsents(*files, kEhrUri, seeded, consents, 10000);
          !s.ok()) {
        return Fail(s);
      }
      WriteSeeded(state_dir, consents);
      server = start_server();
      if (!server.ok()) return Fail(server.status());
      connected = ConnectAll(**server, certs, name_override);
      if (!connected.ok()) return Fail(connected.status());
    }
  } else if (needs_seed) {
    // A remote server is seeded through the API (request, then sign), once.
    client::ConsentClient probe(connected->ehr[0]);
    careseal::v1::CheckConsentRequest check;
    check.set_patient(absl::StrCat("tenants/", kTenant, "/patients/",
                                   SeededPatient(consents - 1)));
    check.set_procedure_code(kProcedure);
    auto answer = probe.CheckConsent(check);
    if (!answer.ok() || !answer->valid()) {
      std::fprintf(stderr, "seeding %lld consents through the API\n",
                   static_cast<long long>(consents));
      auto pool = SignPool::Request(connected->ehr, *document, "p-", consents,
                                    absl::GetFlag(FLAGS_inflight), nullptr);
      if (!pool.ok()) return Fail(pool.status());
      auto sign = (*pool)->MakeSignSource(connected->portal);
      LoadResult r = RunCount(*sign, absl::GetFlag(FLAGS_inflight), consents);
      if (r.errors > 0) {
        return Fail(absl::UnavailableError(r.first_error));
      }
    }
  }

  const ServerUnderTest& s = **server;
  std::printf("server: %s\n", s.description().c_str());
  std::vector<Measurement> results;
  std::optional<double> echo_rate;
  const double run_seconds =
      absl::GetFlag(FLAGS_seconds) + absl::GetFlag(FLAGS_warmup_seconds);
  // Pending consents for sign-consent (all its calls) or clinic-day (its
  // share), requested through the API before the window.
  auto make_pool =
      [&](int64_t per_second) -> absl::StatusOr<std::unique_ptr<SignPool>> {
    int64_t size = absl::GetFlag(FLAGS_sign_pool);
    if (size <= 0) size = static_cast<int64_t>(per_second * run_seconds);
    std::fprintf(stderr, "requesting %lld pending consents to sign ...\n",
                 static_cast<long long>(size));
    double rate = 0;
    auto made = SignPool::Request(
        connected->ehr, *document,
        absl::StrCat("s", client::NewRandomRequestId().substr(0, 8), "-"), size,
        absl::GetFlag(FLAGS_inflight), &rate);
    if (made.ok()) {
      std::printf("(set-up: %lld RequestConsent calls at %.0f calls/s)\n",
                  static_cast<long long>(size), rate);
    }
    return made;
  };
  auto make_threads = [&]() {
    return CreateThreads(connected->clinician[0], 64);
  };
  for (const std::string& name : wanted) {
    std::unique_ptr<CallSource> source;
    std::unique_ptr<SignPool> pool;
    if (name == "echo") {
      source = MakeEchoSource(connected->ehr, absl::GetFlag(FLAGS_echo_bytes));
    } else if (name == "check-consent") {
      source = MakeCheckSource(connected->ehr, consents);
    } else if (name == "sign-consent") {
      auto made = make_pool(7000);
      if (!made.ok()) return Fail(made.status());
      pool = *std::move(made);
      source = pool->MakeSignSource(connected->portal);
    } else if (name == "send-message") {
      auto threads = make_threads();
      if (!threads.ok()) return Fail(threads.status());
      source = MakeSendMessageSource(connected->clinician, *std::move(threads));
    } else if (name == "submit-followup") {
      auto version = Phq9Version(connected->clinician[0]);
      if (!version.ok()) return Fail(version.status());
      source = MakeSubmitSource(connected->clinician, consents, *version);
    } else if (name == "clinic-day") {
      auto made = make_pool(1000);
      if (!made.ok()) return Fail(made.status());
      pool = *std::move(made);
      auto threads = make_threads();
      if (!threads.ok()) return Fail(threads.status());
      auto version = Phq9Version(connected->clinician[0]);
      if (!version.ok()) return Fail(version.status());
      std::vector<std::pair<int, std::unique_ptr<CallSource>>> mix;
      mix.emplace_back(60, MakeCheckSource(connected->ehr, consents));
      mix.emplace_back(
          20, MakeSendMessageSource(connected->clinician, *std::move(threads)));
      mix.emplace_back(
          10, MakeSubmitSource(connected->clinician, consents, *version));
      mix.emplace_back(10, pool->MakeSignSource(connected->portal));
      source = MakeMixedSource(std::move(mix));
    }
    Measurement m = Measure(name, *source, s);
    Report(m, s);
    if (name == "echo") {
      if (m.load.ok > 0) echo_rate = m.load.CallsPerSecond();
      if (m.load.errors > 0 && m.load.ok == 0) {
        std::printf(
            "   (no echo ceiling: the server does not serve "
            "careseal.bench.v1.EchoService)\n");
      }
    }
    results.push_back(std::move(m));
  }
  std::printf("\n");
  for (const Measurement& m : results) {
    const double rate = m.load.CallsPerSecond();
    const std::string ratio =
        echo_rate ? absl::StrFormat("%.3f", rate / *echo_rate) : "n/a";
    std::printf(
        "%s calls_per_s=%.0f p50_ms=%.2f p99_ms=%.2f ratio_to_echo=%s\n",
        m.scenario.c_str(), rate, m.load.PercentileMs(0.50),
        m.load.PercentileMs(0.99), ratio.c_str());
  }
  connected->Clear();
  server->reset();
  return 0;
}

}  // namespace
}  // namespace careseal::bench

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--serve_child") {
      return careseal::bench::RunChildServer(argc, argv);
    }
  }
  absl::SetProgramUsageMessage(
      "careseal-bench: closed-loop load over mutual TLS through CareSeal's "
      "public contracts, with an echo ceiling measured in the same run");
  careseal::NormalizeFlagSpelling(argc, argv);
  absl::ParseCommandLine(argc, argv);
  // The in-process server (and the client) run as careseal-server would.
  careseal::ConfigureProcessForServing();
  std::error_code ec;
  const std::string self =
      std::filesystem::read_symlink("/proc/self/exe", ec).string();
  return careseal::bench::Run(self);
}
