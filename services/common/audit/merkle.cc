#include "services/common/audit/merkle.h"

#include <bit>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status.h"

namespace careseal::audit {
namespace {

static_assert(kMerkleHashSize == crypto::kSha256Size);

constexpr char kLeafPrefix = '\x00';
constexpr char kNodePrefix = '\x01';

using LeafSpan = absl::Span<const std::string>;

// The largest power of two strictly below n: where MTH splits D[n].
// REQUIRES: n >= 2.
size_t SplitPoint(size_t n) { return std::bit_floor(n - 1); }

// MTH(D[n]) for n >= 1, by the recursive definition. O(n) hashes and
// O(log n) stack depth.
std::string SubtreeHash(LeafSpan leaves) {
  if (leaves.size() == 1) return leaves[0];
  const size_t k = SplitPoint(leaves.size());
  return NodeHash(SubtreeHash(leaves.subspan(0, k)),
                  SubtreeHash(leaves.subspan(k)));
}

// PATH(m, D[n]) for m < n, appended to `path` bottom-up.
void AppendPath(uint64_t m, LeafSpan leaves, std::vector<std::string>* path) {
  if (leaves.size() <= 1) return;
  const size_t k = SplitPoint(leaves.size());
  if (m < k) {
    AppendPath(m, leaves.subspan(0, k), path);
    path->push_back(SubtreeHash(leaves.subspan(k)));
  } else {
    AppendPath(m - k, leaves.subspan(k), path);
    path->push_back(SubtreeHash(leaves.subspan(0, k)));
  }
}

// SUBPROOF(m, D[n], b) for 0 < m <= n, appended to `proof` bottom-up.
void AppendSubproof(uint64_t m, LeafSpan leaves, bool complete_subtree,
                    std::vector<std::string>* proof) {
  const size_t n = leaves.size();
  if (m == n) {
    // D[0:m] is a subtree of both trees. The verifier knows its hash only if
    // it is the whole first tree (b == true).
    if (!complete_subtree) proof->push_back(SubtreeHash(leaves));
    return;
  }
  const size_t k = SplitPoint(n);
  if (m <= k) {
    // The first tree lies in the left subtree; the right one is new.
    AppendSubproof(m, leaves.subspan(0, k), complete_subtree, proof);
    proof->push_back(SubtreeHash(leaves.subspan(k)));
  } else {
    // The left subtree is complete in both trees; recurse to the right.
    AppendSubproof(m - k, leaves.subspan(k), false, proof);
    proof->push_back(SubtreeHash(leaves.subspan(0, k)));
  }
}

}  // namespace

std::string LeafHash(absl::string_view data) {
  std::string input;
  input.reserve(1 + data.size());
  input.push_back(kLeafPrefix);
  input.append(data.data(), data.size());
  return crypto::Sha256(input);
}

std::string NodeHash(absl::string_view left, absl::string_view right) {
  if (left.size() == kMerkleHashSize && right.size() == kMerkleHashSize) {
    // The usual case, without a heap allocation for the input.
    char input[1 + 2 * kMerkleHashSize];
    input[0] = kNodePrefix;
    std::memcpy(input + 1, left.data(), kMerkleHashSize);
    std::memcpy(input + 1 + kMerkleHashSize, right.data(), kMerkleHashSize);
    return crypto::Sha256(absl::string_view(input, sizeof(input)));
  }
  std::string input;
  input.reserve(1 + left.size() + right.size());
  input.push_back(kNodePrefix);
  input.append(left.data(), left.size());
  input.append(right.data(), right.size());
  return crypto::Sha256(input);
}

std::string EmptyRoot() { return crypto::Sha256(""); }

std::string RootFromLeafHashes(absl::Span<const std::string> leaf_hashes) {
  if (leaf_hashes.empty()) return EmptyRoot();
  return SubtreeHash(leaf_hashes);
}

absl::StatusOr<std::vector<std::string>> InclusionProof(
    absl::Span<const std::string> leaf_hashes, uint64_t leaf_index) {
  if (leaf_index >= leaf_hashes.size()) {
    return Error(absl::StatusCode::kOutOfRange, "LEAF_INDEX_OUT_OF_RANGE",
                 absl::StrCat("leaf index ", leaf_index,
                              " is out of range for a tree of size ",
                              leaf_hashes.size()));
  }
  std::vector<std::string> path;
  AppendPath(leaf_index, leaf_hashes, &path);
  return path;
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    absl::Span<const std::string> leaf_hashes, uint64_t first_size) {
  if (first_size > leaf_hashes.size()) {
    return Error(absl::StatusCode::kOutOfRange, "TREE_SIZE_OUT_OF_RANGE",
                 absl::StrCat("first tree size ", first_size,
                              " is larger than the second tree size ",
                              leaf_hashes.size()));
  }
  std::vector<std::string> proof;
  if (first_size == 0) return proof;
  AppendSubproof(first_size, leaf_hashes, /*complete_subtree=*/true, &proof);
  return proof;
}

absl::StatusOr<CompactRange> CompactRange::FromFrontier(
    uint64_t size, std::vector<std::string> frontier) {
  const auto expected = static_cast<size_t>(std::popcount(size));
  if (frontier.size() != expected) {
    return Error(absl::StatusCode::kInvalidArgument, "BAD_FRONTIER",
                 absl::StrCat("a frontier of tree size ", size, " has ",
                              expected, " hashes, not ", frontier.size()));
  }
  for (const std::string& hash : frontier) {
    if (hash.size() != kMerkleHashSize) {
      return Error(absl::StatusCode::kInvalidArgument, "BAD_FRONTIER",
                   absl::StrCat("a frontier hash has ", hash.size(),
                                " bytes, expected ", kMerkleHashSize));
    }
  }
  CompactRange range;
  range.size_ = size;
  range.frontier_ = std::move(frontier);
  return range;
}

void CompactRange::Append(absl::string_view leaf_hash) {
  frontier_.emplace_back(leaf_hash);
  // Each trailing one bit of the old size is a perfect subtree of the same
  // height as the one just completed on its right: merge them.
  for (uint64_t s = size_; s & 1; s >>= 1) {
    std::string right = std::move(frontier_.back());
    frontier_.pop_back();
    frontier_.back() = NodeHash(frontier_.back(), right);
  }
  ++size_;
}

std::string CompactRange::Root() const {
  if (frontier_.empty()) return EmptyRoot();
  // MTH splits off the largest perfect subtree on the left at every level,
  // so the root folds the frontier from the right.
  std::string root = frontier_.back();
  for (size_t i = frontier_.size() - 1; i-- > 0;) {
    root = NodeHash(frontier_[i], root);
  }
  return root;
}

}  // namespace careseal::audit
