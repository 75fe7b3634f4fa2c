#include "clients/cpp/merkle_verify.h"

#include <openssl/evp.h>

#include <bit>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace careseal::client {
namespace {

constexpr char kLeafPrefix = '\x00';
constexpr char kNodePrefix = '\x01';

// Fetched once (EVP_sha256() would repeat the provider lookup per call) and
// never freed, so it stays valid during static destruction.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) {
    std::fprintf(stderr, "careseal: OpenSSL cannot provide SHA-256\n");
    std::abort();
  }
  return md;
}

std::string Sha256(absl::string_view data) {
  std::string digest(kMerkleHashSize, '\0');
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(),
                 reinterpret_cast<unsigned char*>(digest.data()), &len,
                 Sha256Md(), nullptr) != 1 ||
      len != kMerkleHashSize) {
    // Only a broken OpenSSL installation gets here; no answer is safe.
    std::fprintf(stderr, "careseal: SHA-256 failed\n");
    std::abort();
  }
  return digest;
}

// HASH(0x01 || left || right) of RFC 9162.
std::string HashChildren(absl::string_view left, absl::string_view right) {
  std::string input;
  input.reserve(1 + left.size() + right.size());
  input.push_back(kNodePrefix);
  input.append(left.data(), left.size());
  input.append(right.data(), right.size());
  return Sha256(input);
}

std::string EmptyRoot() { return Sha256(""); }

absl::Status CheckHashSize(absl::string_view hash, absl::string_view what) {
  if (hash.size() == kMerkleHashSize) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " has ", hash.size(), " bytes, expected ", kMerkleHashSize));
}

absl::Status CheckProofHashSizes(absl::Span<const std::string> proof) {
  for (size_t i = 0; i < proof.size(); ++i) {
    if (proof[i].size() != kMerkleHashSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("proof hash ", i, " has ", proof[i].size(),
                       " bytes, expected ", kMerkleHashSize));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckProofLength(size_t actual, uint64_t expected) {
  if (actual == expected) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("proof has ", actual, " hashes, expected ", expected));
}

// The number of hashes in the audit path of leaf `index` in a tree of `size`
// > index leaves: one per level below the point where the paths to the leaf
// and to the last leaf split ("inner"), plus one per left sibling above it
// ("border").
uint64_t InclusionProofLength(uint64_t index, uint64_t size) {
  const int inner = std::bit_width(index ^ (size - 1));
  const int border = inner >= 64 ? 0 : std::popcount(index >> inner);
  return static_cast<uint64_t>(inner + border);
}

// The number of hashes in a consistency proof between sizes 0 < first <
// second: the audit path of leaf first - 1 in the second tree, less the
// levels inside the largest perfect subtree that ends the first tree, plus
// that subtree's root unless it is the whole first tree.
uint64_t ConsistencyProofLength(uint64_t first, uint64_t second) {
  const int shift = std::countr_zero(first);
  const uint64_t seed = std::has_single_bit(first) ? 0 : 1;
  return seed + InclusionProofLength(first - 1, second) -
         static_cast<uint64_t>(shift);
}

bool Lsb(uint64_t x) { return (x & 1) != 0; }

}  // namespace

std::string LeafHash(absl::string_view data) {
  std::string input;
  input.reserve(1 + data.size());
  input.push_back(kLeafPrefix);
  input.append(data.data(), data.size());
  return Sha256(input);
}

std::string RootFromLeafHashes(absl::Span<const std::string> leaf_hashes) {
  if (leaf_hashes.empty()) return EmptyRoot();
  // A stack of (hash, height) of perfect subtrees with strictly decreasing
  // heights: two subtrees of equal height on top merge into their parent.
  std::vector<std::pair<std::string, int>> stack;
  for (const std::string& leaf : leaf_hashes) {
    stack.emplace_back(leaf, 0);
    while (stack.size() >= 2 &&
           stack[stack.size() - 1].second == stack[stack.size() - 2].second) {
      auto right = std::move(stack.back());
      stack.pop_back();
      auto& left = stack.back();
      left.first = HashChildren(left.first, right.first);
      left.second += 1;
    }
  }
  // The leftover subtrees hang off the right edge of the tree, each one the
  // right child of the node whose left child is the next larger one.
  std::string root = std::move(stack.back().first);
  stack.pop_back();
  while (!stack.empty()) {
    root = HashChildren(stack.back().first, root);
    stack.pop_back();
  }
  return root;
}

absl::Status VerifyInclusion(absl::string_view leaf_hash, uint64_t leaf_index,
                             uint64_t tree_size,
                             absl::Span<const std::string> proof,
                             absl::string_view root) {
  if (absl::Status s = CheckHashSize(leaf_hash, "leaf hash"); !s.ok()) return s;
  if (absl::Status s = CheckHashSize(root, "root hash"); !s.ok()) return s;
  if (absl::Status s = CheckProofHashSizes(proof); !s.ok()) return s;

  // RFC 9162 section 2.1.3.2, step 1.
  if (leaf_index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("leaf index out of range: leaf index ", leaf_index,
                     " is not below tree size ", tree_size));
  }
  // Not an RFC step: the RFC's loop rejects a proof of the wrong length too,
  // this says so more plainly.
  if (absl::Status s = CheckProofLength(
          proof.size(), InclusionProofLength(leaf_index, tree_size));
      !s.ok()) {
    return s;
  }

  // Steps 2 and 3.
  uint64_t fn = leaf_index;
  uint64_t sn = tree_size - 1;
  std::string r(leaf_hash);
  // Step 4.
  for (const std::string& p : proof) {
    if (sn == 0) {  // 4a
      return absl::InvalidArgumentError(
          "inclusion proof is longer than the path to the root");
    }
    if (Lsb(fn) || fn == sn) {  // 4b
      r = HashChildren(p, r);
      if (!Lsb(fn)) {
        while (!Lsb(fn) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = HashChildren(r, p);
    }
    fn >>= 1;  // 4c
    sn >>= 1;
  }
  // Step 5.
  if (sn != 0) {
    return absl::InvalidArgumentError(
        "inclusion proof is shorter than the path to the root");
  }
  if (r != root) {
    return absl::InvalidArgumentError(
        "inclusion proof does not lead to the checkpoint root");
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t first_size, uint64_t second_size,
                               absl::string_view first_root,
                               absl::string_view second_root,
                               absl::Span<const std::string> proof) {
  if (absl::Status s = CheckHashSize(first_root, "first root hash"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckHashSize(second_root, "second root hash");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckProofHashSizes(proof); !s.ok()) return s;

  if (first_size > second_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "first tree size ", first_size, " is larger than second tree size ",
        second_size, ": a log never shrinks"));
  }
  if (first_size == second_size) {
    if (absl::Status s = CheckProofLength(proof.size(), 0); !s.ok()) return s;
    if (first_root != second_root) {
      return absl::InvalidArgumentError(
          absl::StrCat("two checkpoints of the same tree size ", first_size,
                       " have different roots"));
    }
    return absl::OkStatus();
  }
  if (first_size == 0) {
    if (absl::Status s = CheckProofLength(proof.size(), 0); !s.ok()) return s;
    if (first_root != EmptyRoot()) {
      return absl::InvalidArgumentError(
          "the root of a checkpoint of tree size 0 is not SHA-256(\"\")");
    }
    return absl::OkStatus();
  }

  // 0 < first_size < second_size: RFC 9162 section 2.1.4.2.
  // Not an RFC step: a plainer message for a proof of the wrong length, which
  // the RFC's loop would reject as well.
  if (absl::Status s = CheckProofLength(
          proof.size(), ConsistencyProofLength(first_size, second_size));
      !s.ok()) {
    return s;
  }
  // Step 1.
  if (proof.empty()) {
    return absl::InvalidArgumentError("consistency proof is empty");
  }
  // Step 2.
  std::vector<absl::string_view> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(first_size)) path.push_back(first_root);
  for (const std::string& c : proof) path.push_back(c);
  // Step 3.
  uint64_t fn = first_size - 1;
  uint64_t sn = second_size - 1;
  // Step 4.
  if (Lsb(fn)) {
    while (Lsb(fn)) {
      fn >>= 1;
      sn >>= 1;
    }
  }
  // Step 5.
  std::string fr(path[0]);
  std::string sr(path[0]);
  // Step 6.
  for (size_t i = 1; i < path.size(); ++i) {
    const absl::string_view c = path[i];
    if (sn == 0) {  // 6a
      return absl::InvalidArgumentError(
          "consistency proof is longer than the path to the root");
    }
    if (Lsb(fn) || fn == sn) {  // 6b
      fr = HashChildren(c, fr);
      sr = HashChildren(c, sr);
      if (!Lsb(fn)) {
        while (!Lsb(fn) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = HashChildren(sr, c);
    }
    fn >>= 1;  // 6c
    sn >>= 1;
  }
  // Step 7.
  if (sn != 0) {
    return absl::InvalidArgumentError(
        "consistency proof is shorter than the path to the root");
  }
  if (fr != first_root) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the first checkpoint root");
  }
  if (sr != second_root) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the second checkpoint root");
  }
  return absl::OkStatus();
}

}  // namespace careseal::client
