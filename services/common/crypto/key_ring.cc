#include "services/common/crypto/key_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/common/crypto/encoding.h"
#include "services/common/crypto/sha256.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::crypto {
namespace {

constexpr absl::string_view kMasterKeyIdPrefix = "aes256gcm:";
constexpr absl::string_view kMasterKeyIdLabel = "careseal.master-key-id.v1";
constexpr absl::string_view kWrapLabel = "careseal.data-key.v1";
constexpr size_t kMaxKeyFileSize = 64 * 1024;

// Wipes a string holding secret bytes when it goes out of scope.
class SecretString {
 public:
  explicit SecretString(std::string value) : value_(std::move(value)) {}
  ~SecretString() { OPENSSL_cleanse(value_.data(), value_.size()); }
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  const std::string& value() const { return value_; }

 private:
  std::string value_;
};

absl::Status KeyInvalid(absl::string_view message) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonKeyInvalid, message);
}

absl::Status MalformedWrappedKey(absl::string_view why) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonDecryptionFailed,
               absl::StrCat("malformed wrapped data key: ", why));
}

std::string WrapAssociatedData(absl::string_view master_key_id,
                               absl::string_view tenant) {
  return absl::StrCat(kWrapLabel, absl::string_view("\0", 1), master_key_id,
                      absl::string_view("\0", 1), tenant);
}

// Splits a wrapped key into (master key id, AEAD ciphertext).
absl::StatusOr<std::pair<absl::string_view, absl::string_view>> ParseWrapped(
    absl::string_view wrapped) {
  if (wrapped.size() < 2) return MalformedWrappedKey("too short");
  if (static_cast<uint8_t>(wrapped[0]) != KeyRing::kWrappedVersion) {
    return MalformedWrappedKey("unknown format version");
  }
  const size_t id_len = static_cast<uint8_t>(wrapped[1]);
  if (id_len == 0 || wrapped.size() < 2 + id_len) {
    return MalformedWrappedKey("bad master key id length");
  }
  return std::make_pair(wrapped.substr(2, id_len), wrapped.substr(2 + id_len));
}

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status KeyFileUnreadable(const std::string& path, absl::string_view why) {
  return FailedPrecondition(kReasonKeyFileUnreadable,
                            absl::StrCat("key file ", path, ": ", why));
}

// Reads a whole secret file after checking it is a regular file of at most
// kMaxKeyFileSize bytes with no group/other permission bits.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return KeyFileUnreadable(path, ErrnoText(errno));
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) return KeyFileUnreadable(path, ErrnoText(errno));
  if (!S_ISREG(st.st_mode))
    return KeyFileUnreadable(path, "not a regular file");
  if ((st.st_mode & 077) != 0) {
    return FailedPrecondition(
        kReasonKeyFileInsecure,
        absl::StrFormat("key file %s has mode %04o (accessible to group or "
                        "others); run chmod 600",
                        path, st.st_mode & 07777));
  }
  if (st.st_size < 0 || static_cast<size_t>(st.st_size) > kMaxKeyFileSize) {
    return KeyFileUnreadable(path, "too large for a key file");
  }
  std::string contents(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = read(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      OPENSSL_cleanse(contents.data(), contents.size());
      return KeyFileUnreadable(path, n < 0 ? ErrnoText(errno) : "short read");
    }
    done += static_cast<size_t>(n);
  }
  return contents;
}

absl::Status WriteFailed(const std::string& path, absl::string_view what,
                         int err) {
  return Internal(kReasonKeyFileWriteFailed,
                  absl::StrCat("writing key file ", path, ": ", what, ": ",
                               ErrnoText(err)));
}

std::string DirName(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Writes `contents` to a new file at `path` with mode 0600, atomically: the
// file appears complete or not at all, and an existing file is never
// replaced. Returns ALREADY_EXISTS if `path` exists.
absl::Status CreateSecretFile(const std::string& path,
                              absl::string_view contents) {
  OpenSslRandom random;
  const std::string tmp =
      absl::StrCat(path, ".tmp-", HexEncode(random.Bytes(8)));
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return WriteFailed(path, "create temporary file", errno);
  auto fail = [&](absl::string_view what, int err) {
    close(fd);
    unlink(tmp.c_str());
    return WriteFailed(path, what, err);
  };
  if (fchmod(fd, 0600) != 0) return fail("fchmod", errno);
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail("fsync", errno);
  if (close(fd) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    return WriteFailed(path, "close", err);
  }
  // link() fails with EEXIST instead of replacing a file someone else made.
  const int link_rc = link(tmp.c_str(), path.c_str());
  const int link_err = errno;
  unlink(tmp.c_str());
  if (link_rc != 0) {
    if (link_err == EEXIST) {
      return AlreadyExists(kReasonKeyFileWriteFailed,
                           absl::StrCat("key file ", path, " already exists"));
    }
    return WriteFailed(path, "link into place", link_err);
  }
  const int dir_fd = open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> LoadSigningKeyFile(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::string pem, ReadSecretFile(path));
  SecretString secret(std::move(pem));
  absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> signer =
      OpenSslEd25519Signer::Create(secret.value());
  if (!signer.ok()) {
    return Error(
        signer.status().code(), ErrorReason(signer.status()),
        absl::StrCat("key file ", path, ": ", signer.status().message()));
  }
  return signer;
}

}  // namespace

// ---------------------------------------------------------------- KeyRing

std::string KeyRing::MasterKeyId(absl::string_view master_key) {
  const std::string digest = Sha256(
      absl::StrCat(kMasterKeyIdLabel, absl::string_view("\0", 1), master_key));
  return absl::StrCat(kMasterKeyIdPrefix, HexEncode(digest).substr(0, 16));
}

absl::StatusOr<std::string> KeyRing::WrappingKeyId(absl::string_view wrapped) {
  ASSIGN_OR_RETURN(auto parts, ParseWrapped(wrapped));
  return std::string(parts.first);
}

std::string KeyRing::NewDataKey(RandomSource& random) {
  return random.Bytes(kDataKeySize);
}

absl::StatusOr<std::unique_ptr<KeyRing>> KeyRing::Create(
    absl::string_view master_key,
    const std::vector<std::string>& retired_master_keys) {
  std::unique_ptr<KeyRing> ring(new KeyRing());
  auto add = [&ring](absl::string_view key) -> absl::Status {
    if (key.size() != kMasterKeySize) {
      return KeyInvalid(absl::StrCat("a master key is ", kMasterKeySize,
                                     " bytes, got ", key.size()));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<OpenSslAes256Gcm> aead,
                     OpenSslAes256Gcm::Create(key));
    ring->master_keys_.insert_or_assign(MasterKeyId(key), std::move(aead));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(add(master_key));
  ring->master_key_id_ = MasterKeyId(master_key);
  for (const std::string& key : retired_master_keys) RETURN_IF_ERROR(add(key));
  return ring;
}

absl::StatusOr<std::string> KeyRing::WrapDataKey(
    absl::string_view tenant, absl::string_view raw_key) const {
  if (tenant.empty()) {
    return Error(absl::StatusCode::kInvalidArgument, "TENANT_REQUIRED",
                 "wrapping a data key needs the tenant");
  }
  if (raw_key.size() != kDataKeySize) {
    return KeyInvalid(absl::StrCat("a data key is ", kDataKeySize,
                                   " bytes, got ", raw_key.size()));
  }
  const OpenSslAes256Gcm& aead = *master_keys_.at(master_key_id_);
  ASSIGN_OR_RETURN(
      std::string sealed,
      aead.Encrypt(raw_key, WrapAssociatedData(master_key_id_, tenant)));
  std::string out;
  out.reserve(2 + master_key_id_.size() + sealed.size());
  out.push_back(static_cast<char>(kWrappedVersion));
  out.push_back(static_cast<char>(master_key_id_.size()));
  out += master_key_id_;
  out += sealed;
  return out;
}

absl::StatusOr<std::string> KeyRing::UnwrapDataKey(
    absl::string_view tenant, absl::string_view wrapped) const {
  ASSIGN_OR_RETURN(auto parts, ParseWrapped(wrapped));
  const auto [key_id, sealed] = parts;
  const auto it = master_keys_.find(key_id);
  if (it == master_keys_.end()) {
    return FailedPrecondition(
        kReasonUnknownMasterKeyId,
        absl::StrCat("data key is wrapped by master key ", key_id,
                     ", which is not configured"));
  }
  ASSIGN_OR_RETURN(
      std::string raw_key,
      it->second->Decrypt(sealed, WrapAssociatedData(key_id, tenant)));
  if (raw_key.size() != kDataKeySize) {
    OPENSSL_cleanse(raw_key.data(), raw_key.size());
    return MalformedWrappedKey("unexpected data key size");
  }
  return raw_key;
}

// --------------------------------------------------------- SigningKeyRing

absl::StatusOr<std::unique_ptr<SigningKeyRing>> SigningKeyRing::Create(
    std::unique_ptr<OpenSslEd25519Signer> current, const Clock* clock) {
  if (current == nullptr || clock == nullptr) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonKeyInvalid,
                 "SigningKeyRing needs a current signer and a clock");
  }
  std::unique_ptr<SigningKeyRing> ring(new SigningKeyRing(clock));
  RETURN_IF_ERROR(ring->Rotate(std::move(current)));
  return ring;
}

std::shared_ptr<const Signer> SigningKeyRing::Current() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_;
}

absl::StatusOr<std::shared_ptr<const Verifier>> SigningKeyRing::VerifierFor(
    absl::string_view key_id) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto it = keys_.find(key_id);
  if (it == keys_.end()) {
    return NotFound(kReasonUnknownKeyId,
                    absl::StrCat("no signing key with id ", key_id));
  }
  return std::shared_ptr<const Verifier>(it->second.verifier);
}

absl::Status SigningKeyRing::Rotate(
    std::unique_ptr<OpenSslEd25519Signer> next) {
  if (next == nullptr) {
    return Error(absl::StatusCode::kInvalidArgument, kReasonKeyInvalid,
                 "Rotate needs a signer");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<OpenSslEd25519Verifier> verifier,
                   OpenSslEd25519Verifier::Create(next->public_key_raw()));
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (keys_.contains(next->key_id())) {
    return AlreadyExists(kReasonKeyIdExists,
                         absl::StrCat("signing key ", next->key_id(),
                                      " is already in the key ring"));
  }
  if (current_ != nullptr) keys_[current_->key_id()].retire_time = now;
  keys_[next->key_id()] =
      Entry{std::move(verifier), now, absl::InfiniteFuture()};
  current_ = std::move(next);
  return absl::OkStatus();
}

absl::Status SigningKeyRing::AddRetiredKey(absl::string_view public_key_raw,
                                           absl::Time create_time,
                                           absl::Time retire_time) {
  ASSIGN_OR_RETURN(std::unique_ptr<OpenSslEd25519Verifier> verifier,
                   OpenSslEd25519Verifier::Create(public_key_raw));
  absl::MutexLock lock(&mu_);
  if (keys_.contains(verifier->key_id())) {
    return AlreadyExists(kReasonKeyIdExists,
                         absl::StrCat("signing key ", verifier->key_id(),
                                      " is already in the key ring"));
  }
  std::string key_id = verifier->key_id();
  keys_[std::move(key_id)] =
      Entry{std::move(verifier), create_time, retire_time};
  return absl::OkStatus();
}

std::vector<PublicKeyInfo> SigningKeyRing::ListPublicKeys() const {
  std::vector<PublicKeyInfo> out;
  absl::ReaderMutexLock lock(&mu_);
  out.reserve(keys_.size());
  for (const auto& [key_id, entry] : keys_) {
    PublicKeyInfo info;
    info.key_id = key_id;
    info.public_key_raw = entry.verifier->public_key_raw();
    info.state =
        key_id == current_->key_id() ? KeyState::kCurrent : KeyState::kRetired;
    info.create_time = entry.create_time;
    info.retire_time = entry.retire_time;
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const PublicKeyInfo& a, const PublicKeyInfo& b) {
              if ((a.state == KeyState::kCurrent) !=
                  (b.state == KeyState::kCurrent)) {
                return a.state == KeyState::kCurrent;
              }
              if (a.retire_time != b.retire_time) {
                return a.retire_time > b.retire_time;
              }
              return a.key_id < b.key_id;
            });
  return out;
}

// -------------------------------------------------------------- Key files

absl::StatusOr<std::string> LoadMasterKeyFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string key, ReadSecretFile(path));
  if (key.size() != KeyRing::kMasterKeySize) {
    const size_t size = key.size();
    OPENSSL_cleanse(key.data(), key.size());
    return KeyFileUnreadable(
        path,
        absl::StrCat("a master key file holds exactly ",
                     KeyRing::kMasterKeySize, " raw bytes, found ", size));
  }
  return key;
}

absl::StatusOr<std::unique_ptr<OpenSslEd25519Signer>> LoadOrCreateSigningKey(
    const std::string& path) {
  if (access(path.c_str(), F_OK) == 0) return LoadSigningKeyFile(path);
  if (errno != ENOENT) return KeyFileUnreadable(path, ErrnoText(errno));

  ASSIGN_OR_RETURN(std::unique_ptr<OpenSslEd25519Signer> signer,
                   OpenSslEd25519Signer::Generate());
  ASSIGN_OR_RETURN(std::string pem, signer->private_key_pem());
  SecretString secret(std::move(pem));
  const absl::Status written = CreateSecretFile(path, secret.value());
  if (written.code() == absl::StatusCode::kAlreadyExists) {
    return LoadSigningKeyFile(path);  // Another process won the race.
  }
  RETURN_IF_ERROR(written);
  return signer;
}

}  // namespace careseal::crypto
