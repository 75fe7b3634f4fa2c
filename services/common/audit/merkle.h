// The Merkle tree of the audit log: RFC 6962 / RFC 9162 section 2.1 over
// SHA-256, generation side (tree heads, inclusion and consistency proofs).
//
//   leaf hash   LeafHash(d)    = SHA-256(0x00 || d)
//   node hash   NodeHash(l, r) = SHA-256(0x01 || l || r)
//   tree head   MTH({})        = SHA-256("")
//               MTH({d0})      = LeafHash(d0)
//               MTH(D[n])      = NodeHash(MTH(D[0:k]), MTH(D[k:n])) where k
//                                is the largest power of two below n.
//
// The distinct 0x00 / 0x01 prefixes keep a leaf from being passed off as an
// interior node (second-preimage attack on the tree).
//
// Every function takes *leaf hashes* (the output of LeafHash), not entries.
// Proofs are generated from the full list of leaf hashes by computing the
// needed subtree hashes on the fly: O(n) hashes per proof, O(log n) stack.
// The matching verification algorithms (RFC 9162 sections 2.1.3.2 and
// 2.1.4.2) live in clients/cpp/merkle_verify.h, deliberately apart from this
// code, so that an auditor checks the server with code it does not share.
//
// All functions are pure and thread-safe.
#ifndef CARESEAL_SERVICES_COMMON_AUDIT_MERKLE_H_
#define CARESEAL_SERVICES_COMMON_AUDIT_MERKLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace careseal::audit {

// Size of every hash in the tree (SHA-256), in bytes.
inline constexpr size_t kMerkleHashSize = 32;

// SHA-256(0x00 || data): the hash of one log entry's canonical bytes.
std::string LeafHash(absl::string_view data);

// SHA-256(0x01 || left || right): the hash of an interior node.
std::string NodeHash(absl::string_view left, absl::string_view right);

// SHA-256(""): the tree head of the empty tree.
std::string EmptyRoot();

// MTH(D[n]) of RFC 6962 section 2.1 for n = leaf_hashes.size(); EmptyRoot()
// for an empty span. O(n) hashes.
std::string RootFromLeafHashes(absl::Span<const std::string> leaf_hashes);

// PATH(m, D[n]) of RFC 6962 section 2.1.1 (the audit path of RFC 9162
// section 2.1.3.1) for leaf `leaf_index` = m in the tree whose leaves are
// `leaf_hashes` (n = leaf_hashes.size()). Ordered from the leaf's sibling up
// to the child of the root. The path of the only leaf of a one-leaf tree is
// empty. To prove inclusion in an older tree head of size s, pass the first s
// leaf hashes.
// Errors: OUT_OF_RANGE (LEAF_INDEX_OUT_OF_RANGE) unless leaf_index < n.
absl::StatusOr<std::vector<std::string>> InclusionProof(
    absl::Span<const std::string> leaf_hashes, uint64_t leaf_index);

// PROOF(m, D[n]) of RFC 6962 section 2.1.2 (RFC 9162 section 2.1.4.1): the
// proof that the tree head of the first `first_size` = m leaves is a prefix of
// the tree of all n = leaf_hashes.size() leaves. Empty when m == 0 or m == n
// (nothing to prove beyond the tree heads themselves).
// Errors: OUT_OF_RANGE (TREE_SIZE_OUT_OF_RANGE) if first_size > n.
absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    absl::Span<const std::string> leaf_hashes, uint64_t first_size);

// The right edge ("frontier") of an append-only tree: the roots of the perfect
// subtrees that make up a tree of size(), one per set bit of size(), largest
// (leftmost) first. It takes O(log n) memory, Append() costs amortised O(1)
// hashes (at most log2 n), Root() O(log n) hashes, so a log can produce a
// checkpoint at any size without re-reading its leaves. Root() always equals
// RootFromLeafHashes() over the same leaf hashes.
//
// A value type; not thread-safe (guard a shared instance externally).
class CompactRange {
 public:
  // An empty tree.
  CompactRange() = default;

  // Resumes from a frontier saved with frontier() at tree size `size`.
  // Errors: INVALID_ARGUMENT (BAD_FRONTIER) if `frontier` does not hold
  // exactly one kMerkleHashSize-byte hash per set bit of `size`.
  static absl::StatusOr<CompactRange> FromFrontier(
      uint64_t size, std::vector<std::string> frontier);

  // Appends one leaf hash (normally LeafHash() of an entry, 32 bytes).
  void Append(absl::string_view leaf_hash);

  // Number of leaves appended.
  uint64_t size() const { return size_; }

  // MTH of the leaves appended so far; EmptyRoot() for an empty tree.
  std::string Root() const;

  // The perfect-subtree roots, largest (leftmost) first; popcount(size())
  // entries. Persist it with size() to resume with FromFrontier().
  const std::vector<std::string>& frontier() const { return frontier_; }

 private:
  uint64_t size_ = 0;
  std::vector<std::string> frontier_;
};

}  // namespace careseal::audit

#endif  // CARESEAL_SERVICES_COMMON_AUDIT_MERKLE_H_
