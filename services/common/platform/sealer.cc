#include "services/common/platform/sealer.h"

#include "absl/strings/str_cat.h"
#include "services/common/crypto/sha256.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal {
namespace {

constexpr absl::string_view kMagic = "cs1";

std::string VersionBytes(int64_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i)
    out[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
  return out;
}

}  // namespace

const std::vector<sql::Migration>& SealerMigrations() {
  static const auto* const migrations = new std::vector<sql::Migration>{
      {1,
       "CREATE TABLE tenant_data_keys (tenant TEXT NOT NULL, version BIGINT "
       "NOT NULL, wrapped BLOB NOT NULL, create_time_us BIGINT NOT NULL, "
       "PRIMARY KEY (tenant, version))"},
  };
  return *migrations;
}

absl::StatusOr<const crypto::Aead*> Sealer::AeadFor(
    absl::string_view tenant, int64_t version, const std::string& wrapped) {
  std::string cache_key =
      absl::StrCat(tenant, "|", version, "|", crypto::Sha256(wrapped));
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(cache_key);
  if (it != cache_.end()) return it->second.get();
  ASSIGN_OR_RETURN(std::string raw, key_ring_->UnwrapDataKey(tenant, wrapped));
  ASSIGN_OR_RETURN(std::unique_ptr<crypto::OpenSslAes256Gcm> aead,
                   crypto::OpenSslAes256Gcm::Create(raw));
  const crypto::Aead* result = aead.get();
  cache_.emplace(std::move(cache_key), std::move(aead));
  return result;
}

absl::StatusOr<int64_t> Sealer::InsertKey(sql::Txn& txn,
                                          absl::string_view tenant,
                                          int64_t version) {
  std::string raw = crypto::KeyRing::NewDataKey(*random_);
  ASSIGN_OR_RETURN(std::string wrapped, key_ring_->WrapDataKey(tenant, raw));
  RETURN_IF_ERROR(
      txn.Exec(
             "INSERT INTO tenant_data_keys (tenant, version, wrapped, "
             "create_time_us) VALUES (?, ?, ?, ?)",
             {sql::Text(std::string(tenant)), sql::Int(version),
              sql::Bytes(wrapped), sql::Int(absl::ToUnixMicros(clock_->Now()))})
          .status());
  return version;
}

absl::StatusOr<int64_t> Sealer::RotateDataKey(sql::Txn& txn,
                                              absl::string_view tenant) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT COALESCE(MAX(version), 0) FROM "
                                        "tenant_data_keys WHERE tenant = ?",
                                        {sql::Text(std::string(tenant))}));
  return InsertKey(txn, tenant, rows[0].Int(0) + 1);
}

absl::StatusOr<std::string> Sealer::Seal(sql::Txn& txn,
                                         absl::string_view tenant,
                                         absl::string_view plaintext,
                                         absl::string_view associated_data) {
  ASSIGN_OR_RETURN(auto rows,
                   txn.Query("SELECT version, wrapped FROM tenant_data_keys "
                             "WHERE tenant = ? ORDER BY version DESC LIMIT 1",
                             {sql::Text(std::string(tenant))}));
  if (rows.empty()) {
    RETURN_IF_ERROR(InsertKey(txn, tenant, 1).status());
    ASSIGN_OR_RETURN(rows,
                     txn.Query("SELECT version, wrapped FROM tenant_data_keys "
                               "WHERE tenant = ? AND version = 1",
                               {sql::Text(std::string(tenant))}));
  }
  const int64_t version = rows[0].Int(0);
  ASSIGN_OR_RETURN(const crypto::Aead* aead,
                   AeadFor(tenant, version, rows[0].Str(1)));
  ASSIGN_OR_RETURN(std::string ciphertext,
                   aead->Encrypt(plaintext, associated_data));
  return absl::StrCat(kMagic, VersionBytes(version), ciphertext);
}

absl::StatusOr<std::string> Sealer::Open(sql::Txn& txn,
                                         absl::string_view tenant,
                                         absl::string_view sealed,
                                         absl::string_view associated_data) {
  if (sealed.size() < kMagic.size() + 4 ||
      sealed.substr(0, kMagic.size()) != kMagic) {
    return Internal("SEALED_DATA_CORRUPT", "sealed data has an unknown format");
  }
  int64_t version = 0;
  for (int i = 0; i < 4; ++i) {
    version =
        (version << 8) | static_cast<unsigned char>(sealed[kMagic.size() + i]);
  }
  ASSIGN_OR_RETURN(
      auto rows,
      txn.Query("SELECT wrapped FROM tenant_data_keys WHERE "
                "tenant = ? AND version = ?",
                {sql::Text(std::string(tenant)), sql::Int(version)}));
  if (rows.empty()) {
    return Internal("DATA_KEY_MISSING",
                    "the data key for sealed data is gone (crypto-shredded?)");
  }
  ASSIGN_OR_RETURN(const crypto::Aead* aead,
                   AeadFor(tenant, version, rows[0].Str(0)));
  return aead->Decrypt(sealed.substr(kMagic.size() + 4), associated_data);
}

}  // namespace careseal
