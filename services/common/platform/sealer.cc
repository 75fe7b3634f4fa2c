#include "services/common/platform/sealer.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

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

absl::StatusOr<const Sealer::Key*> Sealer::KeyFor(absl::string_view tenant,
                                                  int64_t version,
                                                  const std::string& wrapped) {
  std::string cache_key =
      absl::StrCat(tenant, "|", version, "|", crypto::Sha256(wrapped));
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(cache_key);
  if (it != cache_.end()) return it->second.get();
  ASSIGN_OR_RETURN(std::string raw, key_ring_->UnwrapDataKey(tenant, wrapped));
  auto key = std::make_unique<Key>();
  ASSIGN_OR_RETURN(key->aead, crypto::OpenSslAes256Gcm::Create(raw));
  key->mac_key = crypto::Sha256(absl::StrCat("careseal.mac-key.v1:", raw));
  const Key* result = key.get();
  cache_.emplace(std::move(cache_key), std::move(key));
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

absl::StatusOr<std::string> Sealer::Mac(sql::Txn& txn, absl::string_view tenant,
                                        absl::string_view data) {
  // Make sure the tenant has a first key (Seal creates it), then use it.
  ASSIGN_OR_RETURN(std::optional<std::string> mac,
                   MacIfKeyed(txn, tenant, data));
  if (mac.has_value()) return *std::move(mac);
  RETURN_IF_ERROR(InsertKey(txn, tenant, 1).status());
  ASSIGN_OR_RETURN(mac, MacIfKeyed(txn, tenant, data));
  if (!mac.has_value()) {
    return Internal("DATA_KEY_MISSING",
                    "the tenant's first data key was not stored");
  }
  return *std::move(mac);
}

absl::StatusOr<std::optional<std::string>> Sealer::MacIfKeyed(
    sql::Txn& txn, absl::string_view tenant, absl::string_view data) {
  ASSIGN_OR_RETURN(auto rows, txn.Query("SELECT wrapped FROM tenant_data_keys "
                                        "WHERE tenant = ? AND version = 1",
                                        {sql::Text(std::string(tenant))}));
  if (rows.empty()) return std::nullopt;
  ASSIGN_OR_RETURN(const Key* key, KeyFor(tenant, 1, rows[0].Str(0)));
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key->mac_key.data(),
           static_cast<int>(key->mac_key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           out, &len) == nullptr) {
    return Internal("MAC_FAILED", "HMAC-SHA256 failed");
  }
  return std::string(reinterpret_cast<char*>(out), len);
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
  ASSIGN_OR_RETURN(const Key* key, KeyFor(tenant, version, rows[0].Str(1)));
  ASSIGN_OR_RETURN(std::string ciphertext,
                   key->aead->Encrypt(plaintext, associated_data));
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
  ASSIGN_OR_RETURN(const Key* key, KeyFor(tenant, version, rows[0].Str(0)));
  return key->aead->Decrypt(sealed.substr(kMagic.size() + 4), associated_data);
}

}  // namespace careseal
