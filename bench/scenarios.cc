#include "bench/scenarios.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "careseal/bench/v1/echo.grpc.pb.h"
#include "clients/cpp/client.h"
#include "clients/cpp/consent_client.h"
#include "clients/cpp/followup_client.h"
#include "clients/cpp/messaging_client.h"

ABSL_FLAG(bool, random_request_ids, false,
          "give every mutation a random request id (UUID version 4), as a "
          "client that does not make time-ordered ones would, instead of the "
          "C++ client's time-ordered UUID version 7");

namespace careseal::bench {
namespace {

std::string RequestId() {
  return absl::GetFlag(FLAGS_random_request_ids) ? client::NewRandomRequestId()
                                                 : client::NewRequestId();
}

constexpr auto kCallTimeout = std::chrono::seconds(30);

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + kCallTimeout;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// splitmix64: hashes a call counter into a uniformly spread number.
uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

template <typename Service>
std::vector<std::unique_ptr<typename Service::Stub>> Stubs(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
  std::vector<std::unique_ptr<typename Service::Stub>> stubs;
  for (const auto& c : channels) stubs.push_back(Service::NewStub(c));
  return stubs;
}

careseal::v1::ConsentTemplateVersion BenchDocument() {
  careseal::v1::ConsentTemplateVersion v;
  v.set_title("Informed consent: intravenous ketamine infusion series");
  v.set_body_markdown(
      "# Intravenous ketamine infusions\n\n"
      "This clinic offers a series of low-dose ketamine infusions for "
      "treatment-resistant depression. A typical induction is several "
      "infusions over two to three weeks, then maintenance every few weeks. "
      "Each infusion lasts about 40 minutes; you are monitored throughout and "
      "for at least an hour afterwards.\n\n"
      "## What you may feel\n"
      "- changes in perception, a sense of detachment (dissociation)\n"
      "- a temporary rise in blood pressure and heart rate\n"
      "- nausea, dizziness, blurred vision, headache\n\n"
      "## Before and after\n"
      "Do not eat for six hours before an infusion. Someone must drive you "
      "home; do not drive or make important decisions until the next day.\n\n"
      "## Alternatives\n"
      "Other treatments remain available to you; declining this one does not "
      "affect your care.\n");
  const std::pair<const char*, const char*> acks[] = {
      {"dissociation",
       "I understand that ketamine can cause dissociation and changes in "
       "perception during and after the infusion."},
      {"blood-pressure",
       "I understand that my blood pressure and heart rate will rise and will "
       "be monitored."},
      {"side-effects",
       "I understand that nausea, dizziness, blurred vision and headache can "
       "occur."},
      {"no-driving",
       "I will not drive or make important decisions until the day after an "
       "infusion."},
      {"controlled-substance",
       "I understand that ketamine is a controlled (Schedule III) "
       "medication."},
      {"withdraw", "I know that I can withdraw my consent at any time."},
  };
  for (const auto& [id, text] : acks) {
    auto* a = v.add_acknowledgements();
    a->set_id(id);
    a->set_text(text);
    a->set_required(true);
  }
  v.add_procedure_codes(kProcedure);
  v.add_procedure_codes("ketamine-iv-maintenance");
  v.set_esign_disclosure(
      "You may ask for a paper copy of this document at any time, and you may "
      "withdraw your consent to electronic records by telling the clinic.");
  v.set_signature_meaning("Consent to treatment");
  return v;
}

class EchoSource final : public CallSource {
 public:
  EchoSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
             int payload_bytes)
      : stubs_(Stubs<v1::EchoService>(channels)) {
    request_.set_payload(std::string(payload_bytes, 'x'));
  }

  bool Start(int slot, Completion done) override {
    struct Call {
      grpc::ClientContext context;
      v1::EchoResponse response;
    };
    auto* call = new Call;
    call->context.set_deadline(Deadline());
    stubs_[slot % stubs_.size()]->async()->Echo(
        &call->context, &request_, &call->response,
        [call, done = std::move(done)](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          owned.reset();  // see CallSource::Start
          done(status);
        });
    return true;
  }

 private:
  std::vector<std::unique_ptr<v1::EchoService::Stub>> stubs_;
  v1::EchoRequest request_;  // read concurrently, never written
};

class CheckSource final : public CallSource {
 public:
  CheckSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
              int64_t patients)
      : stubs_(Stubs<careseal::v1::ConsentService>(channels)),
        patients_(patients) {}

  bool Start(int slot, Completion done) override {
    struct Call {
      grpc::ClientContext context;
      careseal::v1::CheckConsentRequest request;
      careseal::v1::CheckConsentResponse response;
    };
    auto* call = new Call;
    call->context.set_deadline(Deadline());
    uint64_t seed = next_.fetch_add(1);
    const int64_t patient = static_cast<int64_t>(NextRandom(seed) % patients_);
    call->request.set_patient(absl::StrCat("tenants/", kTenant, "/patients/",
                                           SeededPatient(patient)));
    call->request.set_procedure_code(kProcedure);
    stubs_[slot % stubs_.size()]->async()->CheckConsent(
        &call->context, &call->request, &call->response,
        [call, done = std::move(done)](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          if (status.ok() && !call->response.valid()) {
            status = grpc::Status(grpc::StatusCode::UNKNOWN,
                                  "a seeded patient's check was not valid");
          }
          owned.reset();  // see CallSource::Start
          done(status);
        });
    return true;
  }

 private:
  std::vector<std::unique_ptr<careseal::v1::ConsentService::Stub>> stubs_;
  const int64_t patients_;
  std::atomic<uint64_t> next_{0};  // hashed into a patient per call
};

struct Pending {
  std::string name;
  std::string token;
};

class RequestSource final : public CallSource {
 public:
  RequestSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                std::string template_version, std::string prefix, int64_t count)
      : stubs_(Stubs<careseal::v1::ConsentService>(channels)),
        template_version_(std::move(template_version)),
        prefix_(std::move(prefix)),
        results_(count) {}

  bool Start(int slot, Completion done) override {
    const int64_t i = next_.fetch_add(1);
    if (i >= static_cast<int64_t>(results_.size())) return false;
    struct Call {
      grpc::ClientContext context;
      careseal::v1::RequestConsentRequest request;
      careseal::v1::RequestConsentResponse response;
    };
    auto* call = new Call;
    call->context.set_deadline(Deadline());
    call->request.set_parent(
        absl::StrCat("tenants/", kTenant, "/patients/", prefix_, i));
    call->request.set_procedure_code(kProcedure);
    call->request.set_template_version(template_version_);
    call->request.set_request_id(RequestId());
    stubs_[slot % stubs_.size()]->async()->RequestConsent(
        &call->context, &call->request, &call->response,
        [this, i, call, done = std::move(done)](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          if (status.ok()) {
            results_[i] = {call->response.consent().name(),
                           call->response.signing_token()};
          }
          owned.reset();  // see CallSource::Start
          done(status);
        });
    return true;
  }

  // Valid once the run is over.
  const std::vector<Pending>& results() const { return results_; }

 private:
  std::vector<std::unique_ptr<careseal::v1::ConsentService::Stub>> stubs_;
  const std::string template_version_;
  const std::string prefix_;
  std::atomic<int64_t> next_{0};
  std::vector<Pending> results_;  // each index written by one call
};

class SignSource final : public CallSource {
 public:
  SignSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
             const std::vector<careseal::v1::SignConsentRequest>& requests)
      : stubs_(Stubs<careseal::v1::ConsentService>(channels)),
        requests_(requests) {}

  bool Start(int slot, Completion done) override {
    const size_t i = next_.fetch_add(1);
    if (i >= requests_.size()) return false;
    struct Call {
      grpc::ClientContext context;
      careseal::v1::SignConsentResponse response;
    };
    auto* call = new Call;
    call->context.set_deadline(Deadline());
    stubs_[slot % stubs_.size()]->async()->SignConsent(
        &call->context, &requests_[i], &call->response,
        [call, done = std::move(done)](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          if (status.ok() && call->response.receipt().signature().empty()) {
            status = grpc::Status(grpc::StatusCode::UNKNOWN,
                                  "a signature came back without a receipt");
          }
          owned.reset();  // see CallSource::Start
          done(status);
        });
    return true;
  }

 private:
  std::vector<std::unique_ptr<careseal::v1::ConsentService::Stub>> stubs_;
  const std::vector<careseal::v1::SignConsentRequest>& requests_;
  std::atomic<size_t> next_{0};
};

class SendMessageSource final : public CallSource {
 public:
  SendMessageSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
                    std::vector<std::string> threads)
      : stubs_(Stubs<careseal::v1::MessagingService>(channels)),
        threads_(std::move(threads)) {}

  bool Start(int slot, Completion done) override {
    struct Call {
      grpc::ClientContext context;
      careseal::v1::SendMessageRequest request;
      careseal::v1::SendMessageResponse response;
    };
    auto* call = new Call;
    call->context.set_deadline(Deadline());
    uint64_t seed = next_.fetch_add(1);
    call->request.set_parent(threads_[NextRandom(seed) % threads_.size()]);
    call->request.set_text(
        "Reminder: please arrive 15 minutes early for your infusion and "
        "bring the name and phone number of the person driving you home.");
    call->request.set_priority(careseal::v1::MESSAGE_PRIORITY_ROUTINE);
    call->request.set_request_id(RequestId());
    stubs_[slot % stubs_.size()]->async()->SendMessage(
        &call->context, &call->request, &call->response,
        [call, done = std::move(done)](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          if (status.ok() && call->response.message().name().empty()) {
            status = grpc::Status(grpc::StatusCode::UNKNOWN,
                                  "a sent message came back without a name");
          }
          owned.reset();  // see CallSource::Start
          done(status);
        });
    return true;
  }

 private:
  std::vector<std::unique_ptr<careseal::v1::MessagingService::Stub>> stubs_;
  const std::vector<std::string> threads_;
  std::atomic<uint64_t> next_{0};
};

class SubmitSource final : public CallSource {
 public:
  SubmitSource(const std::vector<std::shared_ptr<grpc::Channel>>& channels,
               int64_t patients, int32_t version)
      : stubs_(Stubs<careseal::v1::FollowUpService>(channels)),
        patients_(patients),
        version_(version) {}

  bool Start(int slot, Completion done) override {
    struct Call {
      grpc::ClientContext context;
      careseal::v1::SubmitResponseRequest request;
      careseal::v1::SubmitResponseResponse response;
    };
    auto* call = new Call;
    call->context.set_deadline(Deadline());
    uint64_t seed = next_.fetch_add(1);
    uint64_t r = NextRandom(seed);
    call->request.set_parent(
        absl::StrCat("tenants/", kTenant, "/patients/",
                     SeededPatient(static_cast<int64_t>(r % patients_))));
    call->request.set_instrument("instruments/phq-9");
    call->request.set_instrument_version(version_);
    for (int item = 1; item <= 9; ++item) {
      auto* a = call->request.add_answers();
      a->set_item_id(absl::StrCat("phq9_", item));
      r = NextRandom(r);
      a->set_int_value(item == 9 ? 0 : static_cast<int32_t>(r % 4));
    }
    call->request.set_request_id(RequestId());
    stubs_[slot % stubs_.size()]->async()->SubmitResponse(
        &call->context, &call->request, &call->response,
        [call, done = std::move(done)](grpc::Status status) {
          std::unique_ptr<Call> owned(call);
          if (status.ok() && call->response.response().name().empty()) {
            status = grpc::Status(grpc::StatusCode::UNKNOWN,
                                  "a submitted response came back unnamed");
          }
          owned.reset();  // see CallSource::Start
          done(status);
        });
    return true;
  }

 private:
  std::vector<std::unique_ptr<careseal::v1::FollowUpService::Stub>> stubs_;
  const int64_t patients_;
  const int32_t version_;
  std::atomic<uint64_t> next_{0};
};

class MixedSource final : public CallSource {
 public:
  explicit MixedSource(
      std::vector<std::pair<int, std::unique_ptr<CallSource>>> weighted)
      : sources_(std::move(weighted)) {
    for (const auto& [weight, source] : sources_) total_ += weight;
  }

  bool Start(int slot, Completion done) override {
    uint64_t seed = next_.fetch_add(1);
    int pick = total_ > 0 ? static_cast<int>(NextRandom(seed) % total_) : 0;
    size_t first = 0;
    while (first + 1 < sources_.size() && pick >= sources_[first].first) {
      pick -= sources_[first].first;
      ++first;
    }
    for (size_t k = 0; k < sources_.size(); ++k) {
      CallSource& source = *sources_[(first + k) % sources_.size()].second;
      if (source.Start(slot, done)) return true;
    }
    return false;
  }

 private:
  std::vector<std::pair<int, std::unique_ptr<CallSource>>> sources_;
  int total_ = 0;
  std::atomic<uint64_t> next_{0};
};

}  // namespace

absl::StatusOr<std::vector<std::string>> CreateThreads(
    const std::shared_ptr<grpc::Channel>& clinician, int count) {
  client::MessagingClient messaging(clinician);
  std::vector<std::string> threads;
  for (int i = 0; i < count; ++i) {
    careseal::v1::CreateThreadRequest create;
    create.set_parent(absl::StrCat("tenants/", kTenant, "/patients/m-", i));
    create.mutable_thread()->set_subject("Your infusion series");
    create.mutable_thread()->set_category(
        careseal::v1::THREAD_CATEGORY_INSTRUCTIONS);
    create.set_request_id(RequestId());
    auto created = messaging.CreateThread(create);
    if (!created.ok()) return created.status();
    threads.push_back(created->thread().name());
  }
  return threads;
}

std::unique_ptr<CallSource> MakeSendMessageSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& clinician,
    std::vector<std::string> threads) {
  return std::make_unique<SendMessageSource>(clinician, std::move(threads));
}

absl::StatusOr<int32_t> Phq9Version(
    const std::shared_ptr<grpc::Channel>& channel) {
  client::FollowUpClient followup(channel);
  careseal::v1::GetInstrumentRequest get;
  get.set_name("instruments/phq-9");
  auto got = followup.GetInstrument(get);
  if (!got.ok()) return got.status();
  return got->instrument().version();
}

std::unique_ptr<CallSource> MakeSubmitSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& clinician,
    int64_t patients, int32_t phq9_version) {
  return std::make_unique<SubmitSource>(clinician, patients, phq9_version);
}

std::unique_ptr<CallSource> MakeMixedSource(
    std::vector<std::pair<int, std::unique_ptr<CallSource>>> weighted) {
  return std::make_unique<MixedSource>(std::move(weighted));
}

absl::StatusOr<Identity> LoadIdentity(const std::string& dir,
                                      const std::string& name) {
  Identity id;
  auto ca = ReadFile(absl::StrCat(dir, "/ca.crt"));
  auto cert = ReadFile(absl::StrCat(dir, "/", name, ".crt"));
  auto key = ReadFile(absl::StrCat(dir, "/", name, ".key"));
  for (const auto* s : {&ca, &cert, &key}) {
    if (!s->ok()) return s->status();
  }
  return Identity{*ca, *cert, *key};
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> Connect(
    const std::string& target, const Identity& identity, int count,
    const std::string& server_name_override) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < count; ++i) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = identity.ca_pem;
    ssl.pem_cert_chain = identity.cert_pem;
    ssl.pem_private_key = identity.key_pem;
    grpc::ChannelArguments args;
    args.SetInt("careseal.bench.channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(16 << 20);
    if (!server_name_override.empty()) {
      args.SetSslTargetNameOverride(server_name_override);
    }
    auto channel =
        grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(20))) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to ", target, " over mutual TLS"));
    }
    channels.push_back(std::move(channel));
  }
  return channels;
}

absl::StatusOr<DocumentInfo> EnsureTemplate(
    const std::shared_ptr<grpc::Channel>& ehr) {
  client::ConsentClient consent(ehr);
  const std::string template_name =
      absl::StrCat("tenants/", kTenant, "/consentTemplates/", kTemplateId);
  careseal::v1::GetConsentTemplateVersionRequest get;
  get.set_name(template_name + "/versions/latest");
  auto latest = consent.GetConsentTemplateVersion(get);
  if (latest.status().code() == absl::StatusCode::kNotFound) {
    careseal::v1::CreateConsentTemplateRequest create;
    create.set_parent(absl::StrCat("tenants/", kTenant));
    create.set_consent_template_id(kTemplateId);
    create.mutable_consent_template()->set_display_name(
        "IV ketamine (careseal-bench)");
    auto created = consent.CreateConsentTemplate(create);
    if (!created.ok() &&
        client::ErrorReason(created.status()) != "TEMPLATE_ID_TAKEN") {
      return created.status();
    }
    careseal::v1::PublishConsentTemplateVersionRequest publish;
    publish.set_parent(template_name);
    *publish.mutable_version() = BenchDocument();
    auto published = consent.PublishConsentTemplateVersion(publish);
    if (!published.ok()) return published.status();
    latest = consent.GetConsentTemplateVersion(get);
  }
  if (!latest.ok()) return latest.status();
  const careseal::v1::ConsentTemplateVersion& v = latest->version();
  DocumentInfo info;
  info.version_name = v.name();
  info.document_sha256 = v.document_sha256();
  for (const auto& a : v.acknowledgements()) {
    info.acknowledgement_ids.push_back(a.id());
  }
  info.signature_meaning = v.signature_meaning();
  return info;
}

std::string SeededPatient(int64_t i) { return absl::StrCat("p-", i); }

std::unique_ptr<CallSource> MakeEchoSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    int payload_bytes) {
  return std::make_unique<EchoSource>(channels, payload_bytes);
}

std::unique_ptr<CallSource> MakeCheckSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    int64_t patients) {
  return std::make_unique<CheckSource>(channels, patients);
}

absl::StatusOr<std::unique_ptr<SignPool>> SignPool::Request(
    const std::vector<std::shared_ptr<grpc::Channel>>& ehr,
    const DocumentInfo& document, const std::string& patient_prefix,
    int64_t count, int inflight, double* requests_per_second) {
  RequestSource source(ehr, document.version_name, patient_prefix, count);
  LoadResult result = RunCount(source, inflight, count);
  if (result.errors > 0) {
    return absl::UnavailableError(absl::StrCat(
        result.errors, " of ", count,
        " RequestConsent calls failed; first: ", result.first_error));
  }
  if (requests_per_second != nullptr) {
    *requests_per_second = result.CallsPerSecond();
  }
  auto pool = std::unique_ptr<SignPool>(new SignPool());
  pool->requests_.reserve(count);
  int64_t i = 0;
  for (const Pending& p : source.results()) {
    careseal::v1::SignConsentRequest sign;
    sign.set_name(p.name);
    sign.set_signing_token(p.token);
    sign.set_document_sha256(document.document_sha256);
    for (const std::string& id : document.acknowledgement_ids) {
      sign.add_acknowledged_ids(id);
    }
    sign.set_intent_to_sign(true);
    sign.set_printed_name(absl::StrCat("Bench Patient ", i++));
    sign.set_signature_meaning(document.signature_meaning);
    sign.set_signing_method(careseal::v1::SIGNING_METHOD_TYPED_NAME);
    sign.set_client_address("127.0.0.1");
    sign.set_user_agent("careseal-bench");
    sign.set_request_id(RequestId());
    pool->requests_.push_back(std::move(sign));
  }
  return pool;
}

std::unique_ptr<CallSource> SignPool::MakeSignSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& portal) {
  return std::make_unique<SignSource>(portal, requests_);
}

}  // namespace careseal::bench
