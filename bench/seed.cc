#include "bench/seed.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "bench/scenarios.h"
#include "bench/server_fixture.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/macros.h"
#include "services/common/platform/canonical_json.h"
#include "services/common/platform/signing_keys.h"
#include "services/consent/consent_canonical.h"
#include "services/consent/sql_consent_store.h"

namespace careseal::bench {

absl::Status SeedSignedConsents(const ServerFiles& files,
                                const std::string& requested_by, int64_t from,
                                int64_t to, int64_t batch) {
  using consent::Consent;
  ASSIGN_OR_RETURN(auto db, OpenStore(files));
  ASSIGN_OR_RETURN(std::string master,
                   crypto::LoadMasterKeyFile(files.master_key));
  ASSIGN_OR_RETURN(auto key_ring, crypto::KeyRing::Create(master));
  crypto::OpenSslRandom random;
  const Clock* clock = RealClock::Get();
  Sealer sealer(key_ring.get(), &random, clock);
  ASSIGN_OR_RETURN(auto keys, SigningKeyStore::Open(db.get(), files.key_dir,
                                                    "receipt", clock));
  consent::SqlConsentStore store;
  consent::TemplateVersion version;
  RETURN_IF_ERROR(db->Read([&](sql::Txn& txn) -> absl::Status {
    ASSIGN_OR_RETURN(version, store.GetVersion(txn, kTenant, kTemplateId, 0));
    return absl::OkStatus();
  }));
  std::vector<std::string> ack_ids;
  for (const auto& a : version.content.acknowledgements) {
    ack_ids.push_back(a.id);
  }
  const std::shared_ptr<const crypto::Signer> signer = keys->ring().Current();
  ASSIGN_OR_RETURN(const std::string evidence,
                   CanonicalJson(Json{{"client_address", "127.0.0.1"},
                                      {"user_agent", "careseal-bench seed"},
                                      {"drawn_signature_png_b64", ""}}));
  for (int64_t start = from; start < to; start += batch) {
    const int64_t end = std::min(to, start + batch);
    RETURN_IF_ERROR(db->WriteAndWait([&](sql::Txn& txn) -> absl::Status {
      const absl::Time now = clock->Now();
      for (int64_t i = start; i < end; ++i) {
        Consent c;
        c.tenant = kTenant;
        c.patient = SeededPatient(i);
        c.id = crypto::NewOpaqueId(random);
        c.template_id = version.template_id;
        c.version = version.version;
        c.procedure_code = kProcedure;
        c.state = consent::ConsentState::kPending;
        c.document_sha256 = version.document_sha256;
        c.requested_by = requested_by;
        c.create_time = c.update_time = now;
        c.expire_time = now + absl::Hours(24 * 7);
        RETURN_IF_ERROR(store.InsertConsent(txn, c, random.Bytes(32)));
        consent::ReceiptFacts facts;
        facts.consent = c.Name();
        facts.tenant = absl::StrCat("tenants/", c.tenant);
        facts.patient = c.PatientName();
        facts.template_version = c.TemplateVersionName();
        facts.procedure_code = c.procedure_code;
        facts.document_sha256 = c.document_sha256;
        facts.acknowledged_ids = ack_ids;
        facts.printed_name = absl::StrCat("Seeded Patient ", i);
        facts.signature_meaning = version.content.signature_meaning;
        facts.sign_time = now;
        facts.key_id = signer->key_id();
        consent::Receipt receipt;
        ASSIGN_OR_RETURN(receipt.payload, consent::EncodeReceiptPayload(facts));
        ASSIGN_OR_RETURN(receipt.signature, signer->Sign(receipt.payload));
        receipt.key_id = signer->key_id();
        ASSIGN_OR_RETURN(
            std::string sealed,
            sealer.Seal(txn, c.tenant, evidence,
                        absl::StrCat("consent-evidence:", c.Name())));
        RETURN_IF_ERROR(store.MarkSigned(txn, c, receipt, sealed, now));
      }
      return absl::OkStatus();
    }));
    if ((end - from) % 100000 == 0 || end == to) {
      std::fprintf(stderr, "  seeded %lld of %lld consents\n",
                   static_cast<long long>(end - from),
                   static_cast<long long>(to - from));
    }
  }
  return absl::OkStatus();
}

}  // namespace careseal::bench
