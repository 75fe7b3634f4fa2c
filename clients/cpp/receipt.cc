#include "clients/cpp/receipt.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/client.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "nlohmann/json.hpp"

namespace careseal::client {
namespace {

using Json = nlohmann::json;

// An INVALID_ARGUMENT carrying `reason` as google.rpc.ErrorInfo, exactly as a
// server error would, so that ErrorReason() reads it.
absl::Status Fail(absl::string_view reason, absl::string_view message) {
  google::rpc::Status details;
  details.set_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
  details.set_message(std::string(message));
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain("careseal.local");
  details.add_details()->PackFrom(info);
  return FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     std::string(message),
                                     details.SerializeAsString()));
}

std::string Canonical(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::strict);
}

// Parses `text` as JSON that must be exactly in canonical form.
absl::StatusOr<Json> ParseCanonical(absl::string_view text,
                                    absl::string_view what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail("MALFORMED_RECEIPT",
                absl::StrCat("the ", what, " is not a JSON object"));
  }
  std::string again;
  try {
    again = Canonical(j);
  } catch (const Json::exception&) {
    return Fail("MALFORMED_RECEIPT",
                absl::StrCat("the ", what, " is not valid UTF-8"));
  }
  if (again != text) {
    return Fail("NOT_CANONICAL",
                absl::StrCat("the ", what,
                             " is not in canonical form (it was changed after "
                             "it was written)"));
  }
  return j;
}

absl::StatusOr<std::string> StringField(const Json& j, const char* key,
                                        absl::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return Fail("MALFORMED_RECEIPT",
                absl::StrCat("the ", what, " has no string field '", key, "'"));
  }
  return it->get<std::string>();
}

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

absl::StatusOr<Pkey> LoadPublicKey(absl::string_view key) {
  if (key.size() == 32) {
    Pkey pkey(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr,
        reinterpret_cast<const unsigned char*>(key.data()), key.size()));
    if (pkey) return pkey;
  }
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(key.data(), static_cast<int>(key.size())));
  Pkey pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return Fail("BAD_PUBLIC_KEY",
                "the public key is neither an Ed25519 PEM public key nor 32 "
                "raw bytes");
  }
  return pkey;
}

std::string RawPublicKey(EVP_PKEY* pkey) {
  unsigned char raw[32];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1) return "";
  return std::string(reinterpret_cast<char*>(raw), len);
}

}  // namespace

std::string Ed25519KeyId(absl::string_view raw_public_key) {
  unsigned char digest[32];
  unsigned int len = 0;
  EVP_Digest(raw_public_key.data(), raw_public_key.size(), digest, &len,
             EVP_sha256(), nullptr);
  return absl::StrCat("ed25519-",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(digest), 8)));
}

absl::StatusOr<std::string> EncodeReceiptFile(
    const careseal::v1::ConsentReceipt& receipt) {
  if (receipt.payload().empty() || receipt.signature().empty()) {
    return absl::FailedPreconditionError(
        "the consent has no receipt (it is not signed)");
  }
  Json j = Json::object();
  j["file_format"] = std::string(kReceiptFileFormat);
  j["algorithm"] = receipt.algorithm();
  j["key_id"] = receipt.key_id();
  j["payload"] = receipt.payload();
  j["signature"] = absl::Base64Escape(receipt.signature());
  try {
    return Canonical(j) + "\n";
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError("the receipt payload is not UTF-8");
  }
}

absl::StatusOr<VerifiedReceipt> VerifyReceiptFile(
    absl::string_view file_text, absl::string_view public_key) {
  if (file_text.empty() || file_text.back() != '\n') {
    return Fail("NOT_CANONICAL", "a receipt file ends with one newline");
  }
  file_text.remove_suffix(1);
  auto file = ParseCanonical(file_text, "receipt file");
  if (!file.ok()) return file.status();
  for (const auto& [key, value] : file->items()) {
    if (key != "algorithm" && key != "file_format" && key != "key_id" &&
        key != "payload" && key != "signature") {
      return Fail("MALFORMED_RECEIPT",
                  absl::StrCat("unexpected field '", key, "'"));
    }
  }
  auto format = StringField(*file, "file_format", "receipt file");
  if (!format.ok()) return format.status();
  if (*format != kReceiptFileFormat) {
    return Fail("UNSUPPORTED_FORMAT",
                absl::StrCat("unknown receipt file format '", *format, "'"));
  }
  auto algorithm = StringField(*file, "algorithm", "receipt file");
  if (!algorithm.ok()) return algorithm.status();
  if (*algorithm != "Ed25519") {
    return Fail("UNSUPPORTED_ALGORITHM",
                absl::StrCat("algorithm '", *algorithm, "' is not Ed25519"));
  }
  auto key_id = StringField(*file, "key_id", "receipt file");
  if (!key_id.ok()) return key_id.status();
  auto payload = StringField(*file, "payload", "receipt file");
  if (!payload.ok()) return payload.status();
  auto signature_b64 = StringField(*file, "signature", "receipt file");
  if (!signature_b64.ok()) return signature_b64.status();
  std::string signature;
  if (!absl::Base64Unescape(*signature_b64, &signature) ||
      absl::Base64Escape(signature) != *signature_b64 ||
      signature.size() != 64) {
    return Fail("MALFORMED_RECEIPT",
                "the signature is not 64 bytes of canonical base64");
  }

  auto pkey = LoadPublicKey(public_key);
  if (!pkey.ok()) return pkey.status();
  const std::string given_key_id = Ed25519KeyId(RawPublicKey(pkey->get()));
  if (given_key_id != *key_id) {
    return Fail(
        "KEY_ID_MISMATCH",
        absl::StrCat("the receipt was signed with key '", *key_id,
                     "' but the public key given is '", given_key_id, "'"));
  }

  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey->get()) !=
          1 ||
      EVP_DigestVerify(ctx.get(),
                       reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(),
                       reinterpret_cast<const unsigned char*>(payload->data()),
                       payload->size()) != 1) {
    return Fail("SIGNATURE_INVALID",
                "the Ed25519 signature does not match the payload under this "
                "key: the receipt was altered or belongs to another key");
  }

  auto body = ParseCanonical(*payload, "signed payload");
  if (!body.ok()) return body.status();
  VerifiedReceipt out;
  struct Field {
    const char* key;
    std::string* target;
  } fields[] = {{"key_id", &out.key_id},
                {"consent", &out.consent},
                {"tenant", &out.tenant},
                {"patient", &out.patient},
                {"template_version", &out.template_version},
                {"procedure_code", &out.procedure_code},
                {"document_sha256", &out.document_sha256_hex},
                {"printed_name", &out.printed_name},
                {"signature_meaning", &out.signature_meaning},
                {"signing_method", &out.signing_method},
                {"sign_time", &out.sign_time},
                {"drawn_signature_sha256", &out.drawn_signature_sha256_hex}};
  for (const Field& f : fields) {
    auto value = StringField(*body, f.key, "signed payload");
    if (!value.ok()) {
      return Fail("PAYLOAD_INVALID",
                  absl::StrCat("the signed payload lacks '", f.key, "'"));
    }
    *f.target = *value;
  }
  auto payload_format = StringField(*body, "format", "signed payload");
  if (!payload_format.ok() || *payload_format != kReceiptPayloadFormat) {
    return Fail("UNSUPPORTED_FORMAT", "the signed payload's format is unknown");
  }
  if (out.key_id != *key_id) {
    return Fail("KEY_ID_MISMATCH",
                "the key id inside the signed payload differs from the file's");
  }
  auto acks = body->find("acknowledged_ids");
  auto leaf = body->find("audit_leaf_index");
  if (acks == body->end() || !acks->is_array() || leaf == body->end() ||
      !leaf->is_number_integer()) {
    return Fail("PAYLOAD_INVALID",
                "the signed payload lacks acknowledged_ids or "
                "audit_leaf_index");
  }
  for (const Json& a : *acks) {
    if (!a.is_string()) {
      return Fail("PAYLOAD_INVALID", "an acknowledged id is not a string");
    }
    out.acknowledged_ids.push_back(a.get<std::string>());
  }
  out.audit_leaf_index = leaf->get<int64_t>();
  return out;
}

}  // namespace careseal::client
