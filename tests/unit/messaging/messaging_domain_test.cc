// The messaging domain without gRPC: input validation (attachments by magic
// bytes, text limits, webhook URLs) and webhook subscription storage with a
// sealed secret.
#include <future>

#include "gtest/gtest.h"
#include "services/common/crypto/key_ring.h"
#include "services/common/crypto/random.h"
#include "services/common/sql/sqlite_database.h"
#include "services/common/status.h"
#include "services/followup/messaging/events_manager.h"
#include "services/followup/messaging/messaging_manager.h"
#include "tests/testing/temp_dir.h"

namespace careseal::messaging {
namespace {

AttachmentInput Attachment(std::string type, std::string content,
                           std::string filename = "file.bin") {
  return {std::move(filename), std::move(type), std::move(content)};
}

TEST(ValidateAttachmentTest, TypeIsCheckedByMagicBytesAndSize) {
  const std::string png("\x89PNG\r\n\x1a\n0000", 12);
  const std::string jpeg("\xFF\xD8\xFF\xE0rest", 8);
  EXPECT_TRUE(ValidateAttachment(Attachment("image/png", png)).ok());
  EXPECT_TRUE(ValidateAttachment(Attachment("image/jpeg", jpeg)).ok());
  EXPECT_TRUE(
      ValidateAttachment(Attachment("application/pdf", "%PDF-1.4")).ok());
  EXPECT_EQ(ErrorReason(ValidateAttachment(Attachment("image/png", jpeg))),
            "ATTACHMENT_TYPE_MISMATCH");
  EXPECT_EQ(ErrorReason(ValidateAttachment(Attachment("text/html", "<p>"))),
            "ATTACHMENT_TYPE_NOT_ALLOWED");
  std::string big = png;
  big.resize(kMaxAttachmentBytes + 1, 'x');
  EXPECT_EQ(ErrorReason(ValidateAttachment(Attachment("image/png", big))),
            "ATTACHMENT_TOO_LARGE");
  big.resize(kMaxAttachmentBytes);
  EXPECT_TRUE(ValidateAttachment(Attachment("image/png", big)).ok());
  for (const char* bad : {"", "a/b.png", "a\\b.png", "..", "a\nb.png"}) {
    EXPECT_EQ(
        ErrorReason(ValidateAttachment(Attachment("image/png", png, bad))),
        "INVALID_FILENAME")
        << bad;
  }
}

TEST(ValidateMessageTextTest, LimitsCountCodePoints) {
  EXPECT_EQ(ErrorReason(ValidateMessageText("text", "", false)),
            "EMPTY_MESSAGE");
  EXPECT_TRUE(ValidateMessageText("text", "", true).ok());
  std::string accents;
  for (size_t i = 0; i < kMaxText; ++i) accents += "\xC3\xA9";  // é
  EXPECT_TRUE(ValidateMessageText("text", accents, false).ok());
  EXPECT_EQ(ErrorReason(ValidateMessageText("text", accents + "e", false)),
            "FIELD_TOO_LONG");
  EXPECT_TRUE(ValidateMessageText("text", "line 1\nline 2\t.", false).ok());
  EXPECT_EQ(ErrorReason(ValidateMessageText("text", "a\x01", false)),
            "INVALID_CHARACTERS");
}

TEST(ValidateWebhookTest, OnlyPublicHttpsWithoutCredentials) {
  WebhookInput in{
      "t1", "https://ehr.example.com/hooks?x=1", {}, std::string(32, 's')};
  EXPECT_TRUE(ValidateWebhook(in, false).ok());
  for (const char* url :
       {"http://ehr.example.com/", "https://user:pw@ehr.example.com/",
        "https://127.0.0.1/", "https://localhost:8443/", "https://[::1]/",
        "https://192.168.1.5/", "https://172.20.0.1/",
        "https://169.254.1.1/"}) {
    in.url = url;
    EXPECT_EQ(ErrorReason(ValidateWebhook(in, false)), "URL_NOT_ALLOWED")
        << url;
  }
  in.url = "https://127.0.0.1:9000/";
  EXPECT_TRUE(ValidateWebhook(in, /*allow_private=*/true).ok());
  in.url = "not a url";
  EXPECT_EQ(ErrorReason(ValidateWebhook(in, false)), "INVALID_URL");
  in.url = "https://" + std::string(2048, 'a');
  EXPECT_EQ(ErrorReason(ValidateWebhook(in, false)), "FIELD_TOO_LONG");
  in.url = "https://ehr.example.com/";
  in.secret = std::string(31, 's');
  EXPECT_EQ(ErrorReason(ValidateWebhook(in, false)), "SECRET_TOO_SHORT");
  in.secret = std::string(257, 's');
  EXPECT_EQ(ErrorReason(ValidateWebhook(in, false)), "FIELD_TOO_LONG");
  in.secret = std::string(32, 's');
  in.event_types = {19, 99};
  EXPECT_EQ(ErrorField(ValidateWebhook(in, false)), "webhook.event_types");
}

class WebhookStorageTest : public ::testing::Test {
 protected:
  WebhookStorageTest() {
    db_ = *sql::SqliteDatabase::Open({.path = dir_.File("db")});
    key_ring_ = *crypto::KeyRing::Create(random_.Bytes(32));
    sealer_ = std::make_unique<Sealer>(key_ring_.get(), &random_, &clock_);
    EXPECT_TRUE(EventsManager::Migrate(*db_).ok());
    manager_ = std::make_unique<EventsManager>(
        EventsDeps{db_.get(), &clock_, &random_, sealer_.get(), {}});
  }

  CallContext Call() {
    CallContext call;
    call.principal.role = Role::kEhrSystem;
    call.principal.tenant = "t1";
    call.principal.actor = "spiffe://careseal.local/tenant/t1/ehr/epic";
    call.method = "careseal.v1.EventService/CreateWebhook";
    call.request_id = NewId();
    call.request_fingerprint = "fp";
    call.now = clock_.Now();
    return call;
  }
  std::string NewId() { return crypto::NewUuid(random_); }

  absl::StatusOr<Webhook> Create(CallContext& call, WebhookInput in) {
    std::promise<absl::StatusOr<Webhook>> p;
    manager_->CreateWebhook(call, std::move(in),
                            [&](absl::StatusOr<Webhook> w) { p.set_value(w); });
    return p.get_future().get();
  }

  testing::TempDir dir_;
  FakeClock clock_;
  crypto::OpenSslRandom random_;
  std::unique_ptr<sql::SqliteDatabase> db_;
  std::unique_ptr<crypto::KeyRing> key_ring_;
  std::unique_ptr<Sealer> sealer_;
  std::unique_ptr<EventsManager> manager_;
};

TEST_F(WebhookStorageTest, CreateGetListDeleteWithASealedSecret) {
  const std::string secret(40, 'k');
  CallContext call = Call();
  auto w = Create(call, {"t1", "https://ehr.example.com/h", {2, 4}, secret});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->state, WebhookState::kActive);
  EXPECT_EQ(w->event_types.size(), 2u);
  // A retry with the same request id returns the same webhook.
  auto again =
      Create(call, {"t1", "https://ehr.example.com/h", {2, 4}, secret});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, w->id);

  std::string stored;
  ASSERT_TRUE(db_->Read([&](sql::Txn& txn) -> absl::Status {
                   auto rows = txn.Query("SELECT secret_sealed FROM webhooks");
                   if (!rows.ok()) return rows.status();
                   stored = (*rows)[0].Str(0);
                   return absl::OkStatus();
                 })
                  .ok());
  EXPECT_EQ(stored.find(secret), std::string::npos);
  EXPECT_EQ(*manager_->WebhookSecret("t1", w->id), secret);

  CallContext read = Call();
  auto got = manager_->GetWebhook(read, "t1", w->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->url, "https://ehr.example.com/h");
  auto listed = manager_->ListWebhooks(read, "t1", 0, "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->items.size(), 1u);

  CallContext del = Call();
  std::promise<absl::StatusOr<bool>> deleted;
  manager_->DeleteWebhook(
      del, "t1", w->id, [&](absl::StatusOr<bool> r) { deleted.set_value(r); });
  ASSERT_TRUE(deleted.get_future().get().ok());
  EXPECT_EQ(manager_->GetWebhook(read, "t1", w->id).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(WebhookStorageTest, AtMostTenPerTenant) {
  for (int i = 0; i < kMaxWebhooksPerTenant; ++i) {
    CallContext call = Call();
    ASSERT_TRUE(
        Create(call,
               {"t1", "https://ehr.example.com/h", {}, std::string(32, 'k')})
            .ok());
  }
  CallContext call = Call();
  auto eleventh = Create(
      call, {"t1", "https://ehr.example.com/h", {}, std::string(32, 'k')});
  EXPECT_EQ(eleventh.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReason(eleventh.status()), "TOO_MANY_WEBHOOKS");
}

}  // namespace
}  // namespace careseal::messaging
