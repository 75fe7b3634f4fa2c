// The offline audit verifier (clients/cpp/audit_verify.h) over export files
// built here the way the server builds them (leaf bytes, the server's Merkle
// tree and checkpoint payload encoding, Ed25519 keys): a clean log verifies;
// a bit flipped anywhere in an event or checkpoint, a deleted, inserted,
// swapped or reordered event, a truncated tail and a checkpoint re-signed
// with another key all fail, naming the place.
#include "clients/cpp/audit_verify.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/audit/audit_manager.h"
#include "services/common/audit/merkle.h"
#include "services/common/crypto/ed25519.h"

namespace careseal {
namespace {

namespace v1 = ::careseal::v1;
using client::AuditVerifyOptions;
using client::ErrorReason;
using client::VerifyAuditExport;
using ::testing::HasSubstr;

constexpr int kEvents = 200;
constexpr int kCheckpointEvery = 50;
const absl::Time kStart = absl::FromUnixSeconds(1767225600);

void SetTime(absl::Time t, google::protobuf::Timestamp* out) {
  out->set_seconds(absl::ToUnixSeconds(t));
}

std::string Leaf(int i, const std::string& tenant = "clinic-a") {
  nlohmann::json leaf = {
      {"format", "careseal.audit-event.v1"},
      {"tenant", tenant},
      {"time",
       absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", kStart + absl::Seconds(i),
                        absl::UTCTimeZone())},
      {"actor", "spiffe://careseal.local/tenant/clinic-a/ehr/epic"},
      {"role", "ehr_system"},
      {"peer", "spiffe://careseal.local/tenant/clinic-a/ehr/epic"},
      {"action", "careseal.v1.ConsentService/GetConsent"},
      {"resource",
       absl::StrCat("tenants/clinic-a/patients/p-", i % 7, "/consents/c", i)},
      {"patient", absl::StrCat("tenants/clinic-a/patients/p-", i % 7)},
      {"outcome", i % 5 == 0 ? "NOT_FOUND" : "OK"},
      {"reason", i % 5 == 0 ? "RESOURCE_NOT_FOUND" : ""},
      {"request_id", ""},
      {"correlation_id", absl::StrCat("corr", i)},
  };
  return leaf.dump();
}

std::string Line(const v1::ExportAuditLogResponse& item) {
  auto line = client::EncodeExportItem(item);
  EXPECT_TRUE(line.ok()) << line.status();
  return line->substr(0, line->size() - 1);
}

std::string KeyLine(const crypto::OpenSslEd25519Signer& key, bool active,
                    absl::Time created, absl::Time retired = absl::Time()) {
  v1::ExportAuditLogResponse item;
  v1::SigningKey* k = item.mutable_signing_key();
  k->set_key_id(key.key_id());
  k->set_algorithm("Ed25519");
  k->set_public_key(key.public_key_raw());
  k->set_state(active ? v1::SIGNING_KEY_STATE_ACTIVE
                      : v1::SIGNING_KEY_STATE_RETIRED);
  SetTime(created, k->mutable_create_time());
  if (!active) SetTime(retired, k->mutable_retire_time());
  return Line(item);
}

// A checkpoint record of the given facts, signed by `key`.
std::string CheckpointLine(const crypto::Signer& key, int64_t size,
                           const std::string& root, absl::Time time,
                           const std::string& key_id,
                           const std::string& tenant = "clinic-a") {
  audit::Checkpoint c;
  c.tenant = tenant;
  c.tree_size = size;
  c.root_hash = root;
  c.time = time;
  c.key_id = key_id;
  absl::StatusOr<std::string> payload = audit::EncodeCheckpointPayload(c);
  EXPECT_TRUE(payload.ok());
  absl::StatusOr<std::string> signature = key.Sign(*payload);
  EXPECT_TRUE(signature.ok());
  v1::ExportAuditLogResponse item;
  v1::SignedCheckpoint* cp = item.mutable_checkpoint();
  cp->set_key_id(key_id);
  cp->set_algorithm("Ed25519");
  cp->set_payload(*payload);
  cp->set_signature(*signature);
  return Line(item);
}

std::string EventLine(int64_t index, const std::string& leaf) {
  v1::ExportAuditLogResponse item;
  item.mutable_event()->set_leaf_index(index);
  item.mutable_event()->set_leaf_data(leaf);
  item.mutable_event()->set_leaf_hash(audit::LeafHash(leaf));
  return Line(item);
}

// True if `message` says "line N" (not "line N0...").
bool NamesLine(absl::string_view message, size_t n) {
  const std::string needle = absl::StrCat("line ", n);
  for (size_t at = message.find(needle); at != absl::string_view::npos;
       at = message.find(needle, at + 1)) {
    const size_t end = at + needle.size();
    if (end == message.size() || !absl::ascii_isdigit(message[end])) {
      return true;
    }
  }
  return false;
}

class AuditVerifyTest : public ::testing::Test {
 protected:
  AuditVerifyTest()
      : key_(*crypto::OpenSslEd25519Signer::Generate()),
        other_key_(*crypto::OpenSslEd25519Signer::Generate()) {
    lines_.push_back(client::EncodeExportHeader("tenants/clinic-a", 0));
    lines_.back().pop_back();
    lines_.push_back(KeyLine(*key_, true, kStart - absl::Hours(1)));
    std::vector<std::string> hashes;
    for (int i = 0; i < kEvents; ++i) {
      leaves_.push_back(Leaf(i));
      hashes.push_back(audit::LeafHash(leaves_.back()));
      event_line_.push_back(lines_.size());
      lines_.push_back(EventLine(i, leaves_.back()));
      if ((i + 1) % kCheckpointEvery == 0) {
        checkpoint_line_[i + 1] = lines_.size();
        lines_.push_back(
            CheckpointLine(*key_, i + 1, audit::RootFromLeafHashes(hashes),
                           kStart + absl::Seconds(i + 1), key_->key_id()));
      }
    }
    root_ = audit::RootFromLeafHashes(hashes);
    lines_.push_back(EndLine(1, kEvents, kEvents / kCheckpointEvery, kEvents));
  }

  static std::string EndLine(int keys, int events, int checkpoints, int next) {
    std::string end =
        client::EncodeExportEnd({keys, events, checkpoints, next});
    end.pop_back();
    return end;
  }

  static std::string Text(const std::vector<std::string>& lines) {
    return absl::StrJoin(lines, "\n") + "\n";
  }

  // 1-based line number of a 0-based index into lines_.
  static size_t LineNo(size_t index) { return index + 1; }

  absl::Status Verify(const std::vector<std::string>& lines,
                      const AuditVerifyOptions& options = {}) {
    return VerifyAuditExport(Text(lines), options).status();
  }

  std::unique_ptr<crypto::OpenSslEd25519Signer> key_;
  std::unique_ptr<crypto::OpenSslEd25519Signer> other_key_;
  std::vector<std::string> lines_;
  std::vector<std::string> leaves_;
  std::vector<size_t> event_line_;             // leaf -> index into lines_
  std::map<int64_t, size_t> checkpoint_line_;  // size -> index into lines_
  std::string root_;
};

TEST_F(AuditVerifyTest, CleanExportVerifies) {
  auto report = VerifyAuditExport(Text(lines_));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tenant, "tenants/clinic-a");
  EXPECT_EQ(report->events, kEvents);
  EXPECT_EQ(report->checkpoints, kEvents / kCheckpointEvery);
  EXPECT_EQ(report->tree_size, kEvents);
  EXPECT_EQ(report->root_hash, root_);
  EXPECT_TRUE(report->keys_from_export);
  EXPECT_THAT(report->signing_key_ids, ::testing::ElementsAre(key_->key_id()));

  AuditVerifyOptions pinned;
  pinned.trusted_keys = {key_->public_key_pem()};
  pinned.known_tree_heads = {{kEvents, root_}};
  report = VerifyAuditExport(Text(lines_), pinned);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->keys_from_export);
}

TEST_F(AuditVerifyTest, EveryBitFlipInEventsAndCheckpointsIsCaughtAndPlaced) {
  std::vector<size_t> targets(event_line_.begin(), event_line_.end());
  for (const auto& [size, index] : checkpoint_line_) targets.push_back(index);
  // Every bit of one event and one checkpoint (early ones, so that each
  // verification stops soon), then random bits anywhere.
  std::vector<std::pair<size_t, size_t>> flips;  // (line index, bit)
  for (size_t index : {event_line_[1], checkpoint_line_[50]}) {
    for (size_t bit = 0; bit < (lines_[index].size() + 1) * 8; ++bit) {
      flips.push_back({index, bit});
    }
  }
  std::mt19937_64 rng(20260101);
  for (int n = 0; n < 1000; ++n) {
    size_t index = targets[rng() % targets.size()];
    flips.push_back({index, rng() % ((lines_[index].size() + 1) * 8)});
  }
  const std::string clean = Text(lines_);
  std::vector<size_t> line_offset = {0};
  for (const std::string& line : lines_) {
    line_offset.push_back(line_offset.back() + line.size() + 1);
  }
  int checked = 0;
  std::string text = clean;
  for (const auto& [index, bit] : flips) {
    const size_t at = line_offset[index] + bit / 8;
    text[at] ^= static_cast<char>(1 << (bit % 8));
    absl::Status s = VerifyAuditExport(text).status();
    text[at] = clean[at];
    ASSERT_FALSE(s.ok()) << "undetected flip of bit " << bit << " in line "
                         << LineNo(index);
    ASSERT_TRUE(NamesLine(s.message(), LineNo(index)))
        << "flip of bit " << bit << " in line " << LineNo(index)
        << " reported as: " << s.message();
    ++checked;
  }
  EXPECT_GT(checked, 8000);
}

TEST_F(AuditVerifyTest, DeletedEventIsNamed) {
  std::vector<std::string> lines = lines_;
  lines.erase(lines.begin() + event_line_[77]);
  absl::Status s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "MISSING_LEAF");
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("missing leaf 77 (line ",
                                                  LineNo(event_line_[77]),
                                                  " holds leaf 78)")));
}

TEST_F(AuditVerifyTest, InsertedEventIsNamed) {
  // A copy of an event right after it.
  std::vector<std::string> lines = lines_;
  lines.insert(lines.begin() + event_line_[77] + 1, lines_[event_line_[77]]);
  absl::Status s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "LEAF_OUT_OF_ORDER");
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("event at leaf 77 (line ",
                                     LineNo(event_line_[77]) + 1, ")")));

  // A forged event at 77 with every later event renumbered and the signed
  // checkpoints kept in place: each record is well formed, so the next
  // checkpoint's root exposes it.
  std::vector<std::string> forged = leaves_;
  forged.insert(forged.begin() + 77, Leaf(9999));
  lines.assign(lines_.begin(), lines_.begin() + event_line_[0]);
  for (int i = 0; i < kEvents; ++i) {
    lines.push_back(EventLine(i, forged[i]));
    if (auto c = checkpoint_line_.find(i + 1); c != checkpoint_line_.end()) {
      lines.push_back(lines_[c->second]);
    }
  }
  lines.push_back(lines_.back());
  s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "ROOT_MISMATCH") << s;
  EXPECT_THAT(s.message(), HasSubstr("checkpoint at size 100"));
  EXPECT_THAT(s.message(), HasSubstr("among leaves 50..99"));
}

TEST_F(AuditVerifyTest, SwappedOrReorderedEventsAreNamed) {
  std::vector<std::string> lines = lines_;
  std::swap(lines[event_line_[77]], lines[event_line_[78]]);
  absl::Status s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "MISSING_LEAF");
  EXPECT_THAT(s.message(), HasSubstr("missing leaf 77 (line "));

  // Swapped with their indexes rewritten: hashes hold, the root does not.
  lines = lines_;
  lines[event_line_[77]] = EventLine(77, leaves_[78]);
  lines[event_line_[78]] = EventLine(78, leaves_[77]);
  s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "ROOT_MISMATCH");
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("checkpoint at size 100 (line ",
                                     LineNo(checkpoint_line_[100]), ")")));
  EXPECT_THAT(s.message(), HasSubstr("the checkpoint at size 50 still "
                                     "matched"));

  // One event moved further down.
  lines = lines_;
  std::string moved = lines[event_line_[10]];
  lines.erase(lines.begin() + event_line_[10]);
  lines.insert(lines.begin() + event_line_[40], moved);
  s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "MISSING_LEAF");
  EXPECT_THAT(s.message(), HasSubstr("missing leaf 10 "));
}

TEST_F(AuditVerifyTest, TruncatedTailIsNamed) {
  for (int cut = 1; cut <= 5; ++cut) {
    std::vector<std::string> lines(lines_.begin(), lines_.end() - cut);
    absl::Status s = Verify(lines);
    EXPECT_EQ(ErrorReason(s), "TRUNCATED") << cut;
    EXPECT_THAT(s.message(), HasSubstr("without its end record"));
  }
  std::string text = Text(lines_);
  absl::Status s = VerifyAuditExport(text.substr(0, text.size() - 10)).status();
  EXPECT_EQ(ErrorReason(s), "TRUNCATED");
  EXPECT_THAT(s.message(), HasSubstr("incomplete"));

  // Cut in the middle of a checkpoint interval, with a forged end record.
  std::vector<std::string> lines(lines_.begin(),
                                 lines_.begin() + event_line_[179] + 1);
  lines.push_back(EndLine(1, 180, 3, 180));
  s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "UNCOVERED_EVENTS");
  EXPECT_THAT(s.message(), HasSubstr("leaves 150..179"));

  // Cut right after a checkpoint, with a forged end record: only a tree head
  // known from before can tell.
  lines.assign(lines_.begin(), lines_.begin() + checkpoint_line_[150] + 1);
  lines.push_back(EndLine(1, 150, 3, 150));
  EXPECT_TRUE(Verify(lines).ok());
  AuditVerifyOptions known;
  known.known_tree_heads = {{kEvents, root_}};
  s = Verify(lines, known);
  EXPECT_EQ(ErrorReason(s), "KNOWN_HEAD_MISSING");
  EXPECT_THAT(s.message(), HasSubstr("ends at tree size 150"));
}

TEST_F(AuditVerifyTest, CheckpointResignedWithAnotherKeyIsNamed) {
  // Same key id, another key's signature.
  std::vector<std::string> lines = lines_;
  lines[checkpoint_line_[100]] =
      CheckpointLine(*other_key_, 100, audit::RootFromLeafHashes([&] {
        std::vector<std::string> h;
        for (int i = 0; i < 100; ++i) {
          h.push_back(audit::LeafHash(leaves_[i]));
        }
        return h;
      }()),
                     kStart + absl::Seconds(100), key_->key_id());
  absl::Status s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "SIGNATURE_INVALID");
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("checkpoint at size 100 (line ",
                                     LineNo(checkpoint_line_[100]),
                                     "): signature invalid")));

  // Re-signed under the forger's own key id.
  lines = lines_;
  lines[checkpoint_line_[100]] =
      CheckpointLine(*other_key_, 100, std::string(32, 'x'),
                     kStart + absl::Seconds(100), other_key_->key_id());
  s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "UNKNOWN_KEY");
  EXPECT_THAT(s.message(), HasSubstr("checkpoint at size 100"));

  // ... and the forger's key slipped into the export: only pinned keys
  // catch it.
  lines.insert(lines.begin() + 2,
               KeyLine(*other_key_, true, kStart - absl::Hours(1)));
  lines.back() = EndLine(2, kEvents, kEvents / kCheckpointEvery, kEvents);
  AuditVerifyOptions pinned;
  pinned.trusted_keys = {key_->public_key_pem()};
  s = Verify(lines, pinned);
  EXPECT_EQ(ErrorReason(s), "UNTRUSTED_KEY");
  EXPECT_THAT(s.message(), HasSubstr("checkpoint at size 100"));
}

TEST_F(AuditVerifyTest, RetiredKeyCannotSignLater) {
  std::vector<std::string> lines = lines_;
  lines[1] = KeyLine(*key_, false, kStart - absl::Hours(1),
                     kStart + absl::Seconds(120));
  absl::Status s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "KEY_NOT_VALID");
  EXPECT_THAT(s.message(), HasSubstr("checkpoint at size 150"));
}

TEST_F(AuditVerifyTest, ForeignEventAndCountsAreChecked) {
  std::vector<std::string> lines = lines_;
  lines[event_line_[3]] = EventLine(3, Leaf(3, "clinic-b"));
  absl::Status s = Verify(lines);
  EXPECT_EQ(ErrorReason(s), "LEAF_INVALID");
  EXPECT_THAT(s.message(), HasSubstr("event at leaf 3"));

  lines = lines_;
  lines.back() = EndLine(1, kEvents + 1, kEvents / kCheckpointEvery, kEvents);
  EXPECT_EQ(ErrorReason(Verify(lines)), "COUNT_MISMATCH");
}

TEST_F(AuditVerifyTest, VerifyCheckpointChecksKeyAndSignature) {
  audit::Checkpoint c;
  c.tenant = "clinic-a";
  c.tree_size = 200;
  c.root_hash = root_;
  c.time = kStart;
  c.key_id = key_->key_id();
  std::string payload = *audit::EncodeCheckpointPayload(c);
  std::string signature = *key_->Sign(payload);
  auto ok =
      client::VerifyCheckpoint(payload, signature, key_->public_key_pem());
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tree_size, 200);
  EXPECT_EQ(ok->root_hash, root_);
  EXPECT_EQ(ok->tenant, "tenants/clinic-a");
  EXPECT_EQ(ErrorReason(client::VerifyCheckpoint(payload, signature,
                                                 other_key_->public_key_raw())
                            .status()),
            "KEY_ID_MISMATCH");
  signature[5] ^= 1;
  EXPECT_EQ(ErrorReason(client::VerifyCheckpoint(payload, signature,
                                                 key_->public_key_raw())
                            .status()),
            "SIGNATURE_INVALID");
}

}  // namespace
}  // namespace careseal
