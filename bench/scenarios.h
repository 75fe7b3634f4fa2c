// The scenarios of careseal-bench, each a CallSource over the public
// contracts (generated stubs, callback API, mutual TLS):
//   echo           the transport ceiling (bench/proto, same ServerHost)
//   check-consent  ConsentService.CheckConsent for a random seeded patient
//   sign-consent   ConsentService.SignConsent of a pending consent, each call
//                  with its own request_id (durable + signed + audited)
//   send-message   MessagingService.SendMessage by a clinician into one of
//                  the bench's threads (durable + sealed + audited + event)
//   submit-followup FollowUpService.SubmitResponse of a PHQ-9 entered by a
//                  clinician (validated, scored, durable, audited)
//   clinic-day     a mix of the above in one closed loop (see MakeMixedSource)
#ifndef CARESEAL_BENCH_SCENARIOS_H_
#define CARESEAL_BENCH_SCENARIOS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/load.h"
#include "careseal/v1/consent.grpc.pb.h"
#include "careseal/v1/followup.grpc.pb.h"
#include "careseal/v1/messaging.grpc.pb.h"

namespace careseal::bench {

inline constexpr char kTenant[] = "demo-clinic";  // of certs-example's EHR
inline constexpr char kTemplateId[] = "bench-ketamine";
inline constexpr char kProcedure[] = "ketamine-iv-induction";

// PEM material of one client identity.
struct Identity {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// Reads `dir`/{ca.crt,<name>.crt,<name>.key} (certs-example layout).
absl::StatusOr<Identity> LoadIdentity(const std::string& dir,
                                      const std::string& name);

// `count` channels to `target`, each on its own TCP connection (gRPC shares
// one connection between channels with equal arguments, so each gets a
// distinct argument and a local subchannel pool). Waits until connected.
absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> Connect(
    const std::string& target, const Identity& identity, int count,
    const std::string& server_name_override);

// What a signer needs to know about the published template version.
struct DocumentInfo {
  std::string version_name;
  std::string document_sha256;
  std::vector<std::string> acknowledgement_ids;
  std::string signature_meaning;
};

// Creates the bench's consent template in kTenant and publishes its first
// version unless present; returns the latest version's facts.
absl::StatusOr<DocumentInfo> EnsureTemplate(
    const std::shared_ptr<grpc::Channel>& ehr);

// The name of seeded patient `i` (check-consent reads these).
std::string SeededPatient(int64_t i);

std::unique_ptr<CallSource> MakeEchoSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    int payload_bytes);
// Checks random patients among the first `patients` seeded ones; a check
// that does not answer valid=true counts as an error.
std::unique_ptr<CallSource> MakeCheckSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& channels,
    int64_t patients);

// Pending consents to sign, made through RequestConsent.
class SignPool {
 public:
  // Requests `count` consents for fresh patients named "<prefix><i>" through
  // the EHR channels (closed loop, `inflight` calls at a time).
  static absl::StatusOr<std::unique_ptr<SignPool>> Request(
      const std::vector<std::shared_ptr<grpc::Channel>>& ehr,
      const DocumentInfo& document, const std::string& patient_prefix,
      int64_t count, int inflight, double* requests_per_second);

  size_t size() const { return requests_.size(); }
  // Signs the pool's consents in order through the portal channels; each
  // SignConsentRequest carries its own request_id. Runs dry at the end.
  std::unique_ptr<CallSource> MakeSignSource(
      const std::vector<std::shared_ptr<grpc::Channel>>& portal);
  const std::vector<careseal::v1::SignConsentRequest>& requests() const {
    return requests_;
  }

 private:
  std::vector<careseal::v1::SignConsentRequest> requests_;
};

// Creates `count` threads, one per patient "m-<i>", through the clinician
// channel; returns their names.
absl::StatusOr<std::vector<std::string>> CreateThreads(
    const std::shared_ptr<grpc::Channel>& clinician, int count);
// Sends a routine message into a random one of `threads`, each call with its
// own request_id; an answer without a message name counts as an error.
std::unique_ptr<CallSource> MakeSendMessageSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& clinician,
    std::vector<std::string> threads);

// The current version of instruments/phq-9.
absl::StatusOr<int32_t> Phq9Version(
    const std::shared_ptr<grpc::Channel>& channel);
// Submits a PHQ-9 for a random one of the first `patients` seeded patients
// (items 1-8 vary, item 9 is 0: no escalation), each with its own
// request_id; an answer without a score counts as an error.
std::unique_ptr<CallSource> MakeSubmitSource(
    const std::vector<std::shared_ptr<grpc::Channel>>& clinician,
    int64_t patients, int32_t phq9_version);

// One closed loop over several sources: each call goes to a source chosen
// at random by weight; a source that runs dry passes its share to the next
// one that still has calls.
std::unique_ptr<CallSource> MakeMixedSource(
    std::vector<std::pair<int, std::unique_ptr<CallSource>>> weighted);

}  // namespace careseal::bench

#endif  // CARESEAL_BENCH_SCENARIOS_H_
