#include "clients/cpp/audit_verify.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/cpp/merkle_verify.h"
#include "clients/cpp/receipt.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "nlohmann/json.hpp"

namespace careseal::client {
namespace {

using Json = nlohmann::json;
namespace v1 = ::careseal::v1;

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

// Canonical JSON; invalid UTF-8 is replaced (so a corrupted string still
// encodes, and then fails verification where it is used).
std::string Canonical(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// `text` parsed, if it is a JSON object exactly in canonical form.
std::optional<Json> ParseCanonical(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  std::string again;
  try {
    again = j.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    return std::nullopt;
  }
  if (again != text) return std::nullopt;
  return j;
}

const std::string* StringField(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

std::optional<int64_t> IntField(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// Base64 that decodes and re-encodes to the same text.
std::optional<std::string> StrictBase64(const std::string* text) {
  std::string raw;
  if (text == nullptr || !absl::Base64Unescape(*text, &raw) ||
      absl::Base64Escape(raw) != *text) {
    return std::nullopt;
  }
  return raw;
}

// 64 lowercase hex digits.
std::optional<std::string> HashFromHex(const std::string* text) {
  if (text == nullptr || text->size() != 2 * kMerkleHashSize) {
    return std::nullopt;
  }
  for (char c : *text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return std::nullopt;
    }
  }
  return absl::HexStringToBytes(*text);
}

std::optional<absl::Time> ParseRfc3339(const std::string* text) {
  absl::Time t;
  std::string error;
  if (text == nullptr ||
      !absl::ParseTime(absl::RFC3339_full, *text, &t, &error)) {
    return std::nullopt;
  }
  return t;
}

std::string FormatTime(const google::protobuf::Timestamp& ts) {
  absl::Time t =
      absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string Sha256(absl::string_view data) {
  std::string digest(kMerkleHashSize, '\0');
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(),
             reinterpret_cast<unsigned char*>(digest.data()), &len,
             EVP_sha256(), nullptr);
  return digest;
}

// SHA-256(0x01 || left || right).
std::string NodeHash(absl::string_view left, absl::string_view right) {
  std::string input;
  input.reserve(1 + left.size() + right.size());
  input.push_back('\x01');
  input.append(left.data(), left.size());
  input.append(right.data(), right.size());
  return Sha256(input);
}

// The right edge of the tree being recomputed: perfect subtrees of strictly
// decreasing height. O(log n) memory; the root at any size in O(log n).
class Frontier {
 public:
  void Append(std::string leaf_hash) {
    stack_.emplace_back(std::move(leaf_hash), 0);
    while (stack_.size() >= 2 && stack_[stack_.size() - 1].second ==
                                     stack_[stack_.size() - 2].second) {
      auto right = std::move(stack_.back());
      stack_.pop_back();
      stack_.back().first = NodeHash(stack_.back().first, right.first);
      stack_.back().second += 1;
    }
  }
  std::string Root() const {
    if (stack_.empty()) return Sha256("");
    std::string root = stack_.back().first;
    for (size_t i = stack_.size() - 1; i-- > 0;) {
      root = NodeHash(stack_[i].first, root);
    }
    return root;
  }

 private:
  std::vector<std::pair<std::string, int>> stack_;
};

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

// The raw 32-byte Ed25519 key of a PEM public key or of 32 raw bytes.
std::optional<std::string> RawPublicKey(absl::string_view key) {
  if (key.size() == 32) return std::string(key);
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(key.data(), static_cast<int>(key.size())));
  Pkey pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey || EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return std::nullopt;
  }
  unsigned char raw[32];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(pkey.get(), raw, &len) != 1 || len != 32) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<char*>(raw), len);
}

bool Ed25519Verify(absl::string_view raw_public_key,
                   absl::string_view signature, absl::string_view data) {
  Pkey pkey(EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(raw_public_key.data()),
      raw_public_key.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  return pkey && ctx && signature.size() == 64 &&
         EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr,
                              pkey.get()) == 1 &&
         EVP_DigestVerify(
             ctx.get(),
             reinterpret_cast<const unsigned char*>(signature.data()),
             signature.size(),
             reinterpret_cast<const unsigned char*>(data.data()),
             data.size()) == 1;
}

// The facts of a checkpoint payload, unverified.
std::optional<VerifiedCheckpoint> ParsePayload(absl::string_view payload) {
  std::optional<Json> body = ParseCanonical(payload);
  if (!body) return std::nullopt;
  const std::string* format = StringField(*body, "format");
  const std::string* tenant = StringField(*body, "tenant");
  const std::string* time = StringField(*body, "time");
  const std::string* key_id = StringField(*body, "key_id");
  std::optional<std::string> root =
      HashFromHex(StringField(*body, "root_hash"));
  std::optional<int64_t> size = IntField(*body, "tree_size");
  if (format == nullptr || *format != kAuditCheckpointFormat ||
      tenant == nullptr || time == nullptr || !ParseRfc3339(time) ||
      key_id == nullptr || !root || !size || *size < 0 || body->size() != 6) {
    return std::nullopt;
  }
  return VerifiedCheckpoint{*tenant, *size, *root, *time, *key_id};
}

bool ConsumeLiteral(absl::string_view* s, absl::string_view literal) {
  if (s->substr(0, literal.size()) != literal) return false;
  s->remove_prefix(literal.size());
  return true;
}

// {"leaf":"<base64>","leaf_hash":"<64 hex>","leaf_index":N,"type":"event"}
// exactly, which is canonical JSON by construction (base64 and hex need no
// escaping; N has no sign or leading zero).
bool ParseEventLine(absl::string_view line, std::string* leaf,
                    std::string* hash, int64_t* index) {
  if (!ConsumeLiteral(&line, "{\"leaf\":\"")) return false;
  size_t end = line.find('"');
  if (end == absl::string_view::npos) return false;
  for (char c : line.substr(0, end)) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' &&
        c != '/' && c != '=') {
      return false;
    }
  }
  leaf->assign(line.data(), end);
  line.remove_prefix(end);
  if (!ConsumeLiteral(&line, "\",\"leaf_hash\":\"") || line.size() < 64) {
    return false;
  }
  hash->assign(line.data(), 64);
  line.remove_prefix(64);
  if (!ConsumeLiteral(&line, "\",\"leaf_index\":")) return false;
  size_t digits = 0;
  while (digits < line.size() && absl::ascii_isdigit(line[digits])) ++digits;
  if (digits == 0 || digits > 18 || (digits > 1 && line[0] == '0')) {
    return false;
  }
  *index = 0;
  for (size_t i = 0; i < digits; ++i) *index = *index * 10 + (line[i] - '0');
  line.remove_prefix(digits);
  return line == ",\"type\":\"event\"}";
}

// The tenant of a careseal.audit-event.v1 leaf (a flat canonical JSON
// object, so these members can only be top-level keys: quotes inside string
// values are escaped). nullopt if it is not such a leaf.
std::optional<std::string> LeafTenant(absl::string_view leaf) {
  if (leaf.empty() || leaf.front() != '{' || leaf.back() != '}' ||
      leaf.find(absl::StrCat("\"format\":\"", kAuditEventFormat, "\"")) ==
          absl::string_view::npos) {
    return std::nullopt;
  }
  constexpr absl::string_view kKey = "\"tenant\":\"";
  size_t at = leaf.find(kKey);
  if (at == absl::string_view::npos) return std::nullopt;
  absl::string_view rest = leaf.substr(at + kKey.size());
  size_t end = rest.find('"');
  if (end == absl::string_view::npos ||
      rest.substr(0, end).find('\\') != absl::string_view::npos) {
    return std::nullopt;
  }
  return std::string(rest.substr(0, end));
}

struct KeyRecord {
  std::string raw;
  absl::Time create_time;
  std::optional<absl::Time> retire_time;
};

class ExportVerifier {
 public:
  explicit ExportVerifier(const AuditVerifyOptions& options)
      : options_(options) {}

  absl::StatusOr<AuditVerifyReport> Run(absl::string_view text) {
    if (!options_.trusted_keys.empty()) {
      report_.keys_from_export = false;
      for (const std::string& key : options_.trusted_keys) {
        std::optional<std::string> raw = RawPublicKey(key);
        if (!raw) {
          return Fail("BAD_PUBLIC_KEY",
                      "a trusted key is neither an Ed25519 PEM public key "
                      "nor 32 raw bytes");
        }
        trusted_[Ed25519KeyId(*raw)] = *raw;
      }
    }
    for (const auto& head : options_.known_tree_heads) {
      known_[head.tree_size] = head.root_hash;
    }
    size_t pos = 0;
    while (pos < text.size()) {
      ++line_;
      size_t nl = text.find('\n', pos);
      if (nl == absl::string_view::npos) {
        return Fail("TRUNCATED",
                    absl::StrCat("line ", line_, " ", After(),
                                 " is incomplete: the file was truncated"));
      }
      if (ended_) {
        return Fail(
            "MALFORMED_EXPORT",
            absl::StrCat("line ", line_, ": records after the end record"));
      }
      if (absl::Status s = Record(text.substr(pos, nl - pos)); !s.ok()) {
        return s;
      }
      pos = nl + 1;
    }
    if (line_ == 0) return Fail("MALFORMED_EXPORT", "the export is empty");
    if (!ended_) {
      return Fail(
          "TRUNCATED",
          absl::StrCat("the export ends after line ", line_, " ", After(),
                       " without its end record: it was truncated"));
    }
    if (!known_.empty() && known_.rbegin()->first > next_leaf_) {
      return Fail("KNOWN_HEAD_MISSING",
                  absl::StrCat("the export ends at tree size ", next_leaf_,
                               " but a tree of size ", known_.rbegin()->first,
                               " is known: the log was cut short"));
    }
    const int64_t uncovered = next_leaf_ - last_size_;
    if (uncovered > 0) {
      if (!options_.allow_uncovered_tail) {
        return Fail(
            "UNCOVERED_EVENTS",
            absl::StrCat("events at leaves ", last_size_, "..", next_leaf_ - 1,
                         " are not covered by any signed checkpoint "
                         "(export up to a checkpoint, or allow an "
                         "uncovered tail)"));
      }
      report_.uncovered_events = uncovered;
    }
    report_.events = events_;
    report_.checkpoints = checkpoints_;
    report_.tree_size = last_size_;
    return report_;
  }

 private:
  // Where the last good record was, for messages about the next one.
  std::string After() const {
    return last_place_.empty() ? "(at the start)"
                               : absl::StrCat("(after ", last_place_, ")");
  }

  std::string Line() const { return absl::StrCat("line ", line_); }

  absl::Status Record(absl::string_view line) {
    if (line_ > 1) {
      // The common case without a JSON parser: an event record in exactly
      // its canonical shape. Anything else takes the general path.
      std::string leaf, hash;
      int64_t index = 0;
      if (ParseEventLine(line, &leaf, &hash, &index)) {
        return Event(index, &leaf, &hash, true);
      }
    }
    std::optional<Json> j = ParseCanonical(line);
    const std::string* type = j ? StringField(*j, "type") : nullptr;
    if (!j || type == nullptr) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(Line(), " ", After(),
                               ": not a canonical JSON record (it was "
                               "altered)"));
    }
    if (line_ == 1) {
      if (*type != "header") {
        return Fail("MALFORMED_EXPORT",
                    "line 1: an export starts with its header record");
      }
      return Header(*j);
    }
    if (*type == "signing_key") return SigningKey(*j);
    if (*type == "event") return Event(*j);
    if (*type == "checkpoint") return CheckpointRecord(*j);
    if (*type == "end") return End(*j);
    return Fail("MALFORMED_EXPORT",
                absl::StrCat(Line(), " ", After(), ": unknown record type '",
                             *type, "'"));
  }

  absl::Status Header(const Json& j) {
    const std::string* format = StringField(j, "format");
    const std::string* tenant = StringField(j, "tenant");
    std::optional<int64_t> start = IntField(j, "start_leaf_index");
    if (format == nullptr || *format != kAuditExportFormat ||
        tenant == nullptr || tenant->rfind("tenants/", 0) != 0 || !start ||
        j.size() != 4) {
      return Fail(
          "MALFORMED_EXPORT",
          absl::StrCat("line 1: not a ", kAuditExportFormat, " header"));
    }
    if (*start != 0) {
      return Fail("PARTIAL_EXPORT",
                  absl::StrCat("the export starts at leaf ", *start,
                               ", so the tree cannot be recomputed; export "
                               "from leaf 0"));
    }
    report_.tenant = *tenant;
    tenant_id_ = tenant->substr(8);
    last_place_ = "the header";
    return absl::OkStatus();
  }

  absl::Status SigningKey(const Json& j) {
    const std::string* key_id = StringField(j, "key_id");
    const std::string* algorithm = StringField(j, "algorithm");
    const std::string* state = StringField(j, "state");
    std::optional<std::string> raw = StrictBase64(StringField(j, "public_key"));
    std::optional<absl::Time> create =
        ParseRfc3339(StringField(j, "create_time"));
    const std::string* retire_text = StringField(j, "retire_time");
    std::optional<absl::Time> retire = ParseRfc3339(retire_text);
    const std::string where = absl::StrCat(
        "signing key ", key_id != nullptr ? *key_id : "?", " (", Line(), ")");
    if (events_ > 0 || checkpoints_ > 0) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(where, ": keys come before the events"));
    }
    const bool active = state != nullptr && *state == "ACTIVE";
    const bool ended =
        state != nullptr && (*state == "RETIRED" || *state == "REVOKED");
    if (key_id == nullptr || algorithm == nullptr || *algorithm != "Ed25519" ||
        !(active || ended) || !raw || raw->size() != 32 || !create ||
        (retire_text != nullptr && (!retire || active)) ||
        j.size() != (retire_text != nullptr ? 7u : 6u)) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(where, ": not a valid signing key record"));
    }
    if (Ed25519KeyId(*raw) != *key_id) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(where, ": the key id is not that of the key"));
    }
    if (!keys_.emplace(*key_id, KeyRecord{*raw, *create, retire}).second) {
      return Fail("MALFORMED_EXPORT", absl::StrCat(where, ": listed twice"));
    }
    last_place_ = absl::StrCat("signing key ", *key_id);
    return absl::OkStatus();
  }

  absl::Status Event(const Json& j) {
    std::optional<int64_t> index = IntField(j, "leaf_index");
    if (!index) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(Line(), " ", After(),
                               ": an event record without a leaf index"));
    }
    return Event(*index, StringField(j, "leaf"), StringField(j, "leaf_hash"),
                 j.size() == 4);
  }

  absl::Status Event(int64_t index_value, const std::string* leaf_text,
                     const std::string* hash_text, bool well_formed) {
    const int64_t* index = &index_value;
    const std::string where =
        absl::StrCat("event at leaf ", *index, " (", Line(), ")");
    if (*index > next_leaf_) {
      return Fail("MISSING_LEAF",
                  absl::StrCat("missing leaf ", next_leaf_, " (", Line(),
                               " holds leaf ", *index, ")"));
    }
    if (*index < next_leaf_) {
      return Fail("LEAF_OUT_OF_ORDER",
                  absl::StrCat(where, ": out of order or repeated; leaf ",
                               next_leaf_, " was expected here"));
    }
    std::optional<std::string> leaf = StrictBase64(leaf_text);
    std::optional<std::string> stored = HashFromHex(hash_text);
    if (!leaf || !stored || !well_formed) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(where, ": not a valid event record"));
    }
    std::string hash = LeafHash(*leaf);
    if (hash != *stored) {
      return Fail("LEAF_HASH_MISMATCH",
                  absl::StrCat(where, ": leaf hash does not match its bytes"));
    }
    std::optional<std::string> tenant = LeafTenant(*leaf);
    if (!tenant) {
      return Fail("LEAF_INVALID", absl::StrCat(where, ": the leaf is not a ",
                                               kAuditEventFormat, " event"));
    }
    if (*tenant != tenant_id_) {
      return Fail("LEAF_INVALID",
                  absl::StrCat(where, ": the event belongs to tenant '",
                               *tenant, "', not to this log"));
    }
    frontier_.Append(std::move(hash));
    ++next_leaf_;
    ++events_;
    last_place_ = absl::StrCat("event at leaf ", *index);
    if (auto k = known_.find(next_leaf_);
        k != known_.end() && frontier_.Root() != k->second) {
      return Fail("KNOWN_HEAD_MISMATCH",
                  absl::StrCat("tree size ", next_leaf_, " (after ", where,
                               "): the root differs from the known tree head "
                               "of that size: the log was rewritten"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckpointRecord(const Json& j) {
    const std::string* payload = StringField(j, "payload");
    const std::string* key_id = StringField(j, "key_id");
    const std::string* algorithm = StringField(j, "algorithm");
    std::optional<std::string> signature =
        StrictBase64(StringField(j, "signature"));
    std::optional<VerifiedCheckpoint> facts =
        payload != nullptr ? ParsePayload(*payload) : std::nullopt;
    if (!facts) {
      return Fail(
          "MALFORMED_EXPORT",
          absl::StrCat("checkpoint at ", Line(), " ", After(), ": not a valid ",
                       kAuditCheckpointFormat, " record"));
    }
    const std::string where = absl::StrCat("checkpoint at size ",
                                           facts->tree_size, " (", Line(), ")");
    if (key_id == nullptr || algorithm == nullptr || *algorithm != "Ed25519" ||
        !signature || j.size() != 5 || *key_id != facts->key_id) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(where, ": not a valid checkpoint record"));
    }
    if (facts->tenant != report_.tenant) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat(where, ": signed for ", facts->tenant,
                               ", not for ", report_.tenant));
    }
    if (facts->tree_size <= last_size_ && checkpoints_ > 0) {
      return Fail("CHECKPOINT_OUT_OF_ORDER",
                  absl::StrCat(where, ": not after the checkpoint at size ",
                               last_size_));
    }
    if (facts->tree_size > next_leaf_) {
      return Fail("MISSING_LEAF", absl::StrCat("missing leaf ", next_leaf_,
                                               " (", where, " comes first)"));
    }
    if (facts->tree_size < next_leaf_) {
      return Fail(
          "CHECKPOINT_OUT_OF_ORDER",
          absl::StrCat(where, ": placed after leaf ", next_leaf_ - 1,
                       " instead of right after leaf ", facts->tree_size - 1));
    }
    // The key: trusted ones if given, else the export's own records.
    std::string raw;
    if (!trusted_.empty()) {
      auto t = trusted_.find(facts->key_id);
      if (t == trusted_.end()) {
        return Fail("UNTRUSTED_KEY",
                    absl::StrCat(where, ": signed with key ", facts->key_id,
                                 ", which is not among the trusted keys"));
      }
      raw = t->second;
    }
    auto k = keys_.find(facts->key_id);
    if (trusted_.empty()) {
      if (k == keys_.end()) {
        return Fail(
            "UNKNOWN_KEY",
            absl::StrCat(where, ": signed with unknown key ", facts->key_id));
      }
      raw = k->second.raw;
    }
    if (!Ed25519Verify(raw, *signature, *payload)) {
      return Fail("SIGNATURE_INVALID",
                  absl::StrCat(where, ": signature invalid"));
    }
    const absl::Time time = *ParseRfc3339(&facts->time);
    if (k != keys_.end() &&
        (time < k->second.create_time ||
         (k->second.retire_time && time > *k->second.retire_time))) {
      return Fail(
          "KEY_NOT_VALID",
          absl::StrCat(where, ": signed with key ", facts->key_id, " at ",
                       facts->time, ", outside the time the key was in use"));
    }
    if (checkpoints_ > 0 && time < last_time_) {
      return Fail("CHECKPOINT_OUT_OF_ORDER",
                  absl::StrCat(where,
                               ": its time is before the previous "
                               "checkpoint's"));
    }
    if (frontier_.Root() != facts->root_hash) {
      return Fail(
          "ROOT_MISMATCH",
          absl::StrCat(where,
                       ": root hash does not match the events; an event "
                       "among leaves ",
                       last_size_, "..", facts->tree_size - 1,
                       " was changed, removed, inserted or moved",
                       checkpoints_ > 0
                           ? absl::StrCat(" (the checkpoint at size ",
                                          last_size_, " still matched)")
                           : std::string()));
    }
    ++checkpoints_;
    last_size_ = facts->tree_size;
    last_time_ = time;
    report_.root_hash = facts->root_hash;
    report_.last_checkpoint_time = facts->time;
    bool seen = false;
    for (const std::string& id : report_.signing_key_ids)
      seen |= id == facts->key_id;
    if (!seen) report_.signing_key_ids.push_back(facts->key_id);
    last_place_ = absl::StrCat("checkpoint at size ", facts->tree_size);
    return absl::OkStatus();
  }

  absl::Status End(const Json& j) {
    std::optional<int64_t> events = IntField(j, "events");
    std::optional<int64_t> checkpoints = IntField(j, "checkpoints");
    std::optional<int64_t> keys = IntField(j, "signing_keys");
    std::optional<int64_t> next = IntField(j, "next_leaf_index");
    if (!events || !checkpoints || !keys || !next || j.size() != 5) {
      return Fail("MALFORMED_EXPORT",
                  absl::StrCat("end record (", Line(), "): malformed"));
    }
    if (*events != events_ || *checkpoints != checkpoints_ ||
        *keys != static_cast<int64_t>(keys_.size()) || *next != next_leaf_) {
      return Fail(
          "COUNT_MISMATCH",
          absl::StrCat("end record (", Line(), "): it counts ", *events,
                       " events, ", *checkpoints, " checkpoints and ", *keys,
                       " keys up to leaf ", *next, " but the file holds ",
                       events_, ", ", checkpoints_, " and ", keys_.size(),
                       " up to leaf ", next_leaf_,
                       ": records were removed or added"));
    }
    ended_ = true;
    return absl::OkStatus();
  }

  const AuditVerifyOptions& options_;
  AuditVerifyReport report_;
  std::map<std::string, std::string> trusted_;  // key id -> raw key
  std::map<std::string, KeyRecord> keys_;
  std::map<int64_t, std::string> known_;  // tree size -> root
  std::string tenant_id_;
  int64_t line_ = 0;
  std::string last_place_;
  Frontier frontier_;
  int64_t next_leaf_ = 0;
  int64_t events_ = 0;
  int64_t checkpoints_ = 0;
  int64_t last_size_ = 0;
  absl::Time last_time_;
  bool ended_ = false;
};

}  // namespace

std::string EncodeExportHeader(absl::string_view tenant_name,
                               int64_t start_leaf_index) {
  Json j = {{"type", "header"},
            {"format", std::string(kAuditExportFormat)},
            {"tenant", std::string(tenant_name)},
            {"start_leaf_index", start_leaf_index}};
  return Canonical(j) + "\n";
}

absl::StatusOr<std::string> EncodeExportItem(
    const v1::ExportAuditLogResponse& item) {
  Json j;
  switch (item.item_case()) {
    case v1::ExportAuditLogResponse::kSigningKey: {
      const v1::SigningKey& k = item.signing_key();
      j = {{"type", "signing_key"},
           {"key_id", k.key_id()},
           {"algorithm", k.algorithm()},
           {"public_key", absl::Base64Escape(k.public_key())},
           {"state", k.state() == v1::SIGNING_KEY_STATE_ACTIVE    ? "ACTIVE"
                     : k.state() == v1::SIGNING_KEY_STATE_REVOKED ? "REVOKED"
                                                                  : "RETIRED"},
           {"create_time", FormatTime(k.create_time())}};
      if (k.has_retire_time()) j["retire_time"] = FormatTime(k.retire_time());
      break;
    }
    case v1::ExportAuditLogResponse::kEvent: {
      // The canonical form directly (keys sorted; base64 and hex need no
      // escaping): the bulk of every export.
      const v1::AuditEvent& e = item.event();
      return absl::StrCat(
          "{\"leaf\":\"", absl::Base64Escape(e.leaf_data()),
          "\",\"leaf_hash\":\"", absl::BytesToHexString(e.leaf_hash()),
          "\",\"leaf_index\":", e.leaf_index(), ",\"type\":\"event\"}\n");
    }
    case v1::ExportAuditLogResponse::kCheckpoint: {
      const v1::SignedCheckpoint& c = item.checkpoint();
      j = {{"type", "checkpoint"},
           {"key_id", c.key_id()},
           {"algorithm", c.algorithm()},
           {"payload", c.payload()},
           {"signature", absl::Base64Escape(c.signature())}};
      break;
    }
    case v1::ExportAuditLogResponse::ITEM_NOT_SET:
      return absl::InvalidArgumentError("an export item holds nothing");
  }
  return Canonical(j) + "\n";
}

std::string EncodeExportEnd(const ExportCounts& counts) {
  Json j = {{"type", "end"},
            {"signing_keys", counts.signing_keys},
            {"events", counts.events},
            {"checkpoints", counts.checkpoints},
            {"next_leaf_index", counts.next_leaf_index}};
  return Canonical(j) + "\n";
}

absl::StatusOr<VerifiedCheckpoint> VerifyCheckpoint(
    absl::string_view payload, absl::string_view signature,
    absl::string_view public_key) {
  std::optional<VerifiedCheckpoint> facts = ParsePayload(payload);
  if (!facts) {
    return Fail("MALFORMED_CHECKPOINT",
                absl::StrCat("the payload is not a canonical ",
                             kAuditCheckpointFormat, " payload"));
  }
  std::optional<std::string> raw = RawPublicKey(public_key);
  if (!raw) {
    return Fail("BAD_PUBLIC_KEY",
                "the public key is neither an Ed25519 PEM public key nor 32 "
                "raw bytes");
  }
  if (Ed25519KeyId(*raw) != facts->key_id) {
    return Fail("KEY_ID_MISMATCH",
                absl::StrCat("the checkpoint was signed with key '",
                             facts->key_id, "' but the public key given is '",
                             Ed25519KeyId(*raw), "'"));
  }
  if (!Ed25519Verify(*raw, signature, payload)) {
    return Fail("SIGNATURE_INVALID",
                "the Ed25519 signature does not match the checkpoint payload");
  }
  return *facts;
}

absl::StatusOr<AuditVerifyReport> VerifyAuditExport(
    absl::string_view file_text, const AuditVerifyOptions& options) {
  ExportVerifier verifier(options);
  return verifier.Run(file_text);
}

}  // namespace careseal::client
