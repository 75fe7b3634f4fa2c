// The audit log's Merkle tree (careseal_merkle): tree heads and proofs
// against the RFC 6962 reference tree and a hand-computed tree, and every
// proof of random trees of size 1..1024 checked by the auditor's independent
// verifier (careseal_merkle_verify).
#include "services/common/audit/merkle.h"

#include <bit>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "clients/cpp/merkle_verify.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status.h"
#include "tests/unit/audit/proof_probes.h"
#include "tests/unit/audit/rfc6962_vectors.h"

namespace careseal::audit {
namespace {

using ::careseal::testing::AcceptedConsistencyCorruptions;
using ::careseal::testing::AcceptedInclusionCorruptions;
using ::careseal::testing::Hex;
using ::careseal::testing::Unhex;
using ::careseal::testing::UnhexAll;
namespace rfc6962 = ::careseal::testing::rfc6962;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

using Leaves = std::vector<std::string>;

absl::Span<const std::string> Prefix(const Leaves& leaves, uint64_t n) {
  return absl::MakeConstSpan(leaves).first(n);
}

Leaves ReferenceLeafHashes() {
  Leaves hashes;
  for (const char* hex : rfc6962::kLeafDataHex) {
    hashes.push_back(LeafHash(Unhex(hex)));
  }
  return hashes;
}

// Leaf hashes of `n` entries of random length (0..63 bytes), deterministic
// for a seed.
Leaves RandomLeafHashes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Leaves hashes;
  hashes.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    std::string entry(rng() % 64, '\0');
    for (char& c : entry) c = static_cast<char>(rng() & 0xff);
    hashes.push_back(LeafHash(entry));
  }
  return hashes;
}

// roots[s] = tree head of the first s leaves, s = 0..leaves.size().
std::vector<std::string> PrefixRoots(const Leaves& leaves) {
  std::vector<std::string> roots;
  CompactRange range;
  roots.push_back(range.Root());
  for (const std::string& leaf : leaves) {
    range.Append(leaf);
    roots.push_back(range.Root());
  }
  return roots;
}

// A few leaves (or first sizes) in [0, n) worth testing when testing all is
// too slow: both ends, both sides of the root's split, and a random one.
std::vector<uint64_t> Sample(uint64_t n, std::mt19937_64& rng) {
  std::vector<uint64_t> picks = {0, n - 1};
  if (n >= 2) {
    const uint64_t k = std::bit_floor(n - 1);
    picks.push_back(k - 1);
    picks.push_back(k);
  }
  picks.push_back(rng() % n);
  return picks;
}

constexpr uint64_t kMaxRandomSize = 1024;
constexpr uint64_t kExhaustiveUpTo = 64;

// --- Known answers ----------------------------------------------------------

// A 3-leaf tree computed by hand with SHA-256, spelling out RFC 6962's shape:
//
//                 root                root = H(01 || n01 || l2)
//               /      |
//            n01       l2             n01  = H(01 || l0 || l1)
//           /   |
//         l0    l1                    li   = H(00 || entry i)
TEST(MerkleTest, HandComputedThreeLeafTree) {
  using crypto::Sha256;
  const std::string kLeaf(1, '\x00');
  const std::string kNode(1, '\x01');
  const std::string l0 = Sha256(kLeaf + "consent signed");
  const std::string l1 = Sha256(kLeaf + "instructions read");
  const std::string l2 = Sha256(kLeaf + "follow-up answered");
  const std::string n01 = Sha256(kNode + l0 + l1);
  const std::string root = Sha256(kNode + n01 + l2);

  EXPECT_EQ(LeafHash("consent signed"), l0);
  EXPECT_EQ(NodeHash(l0, l1), n01);
  const Leaves leaves = {l0, l1, l2};
  EXPECT_EQ(RootFromLeafHashes(leaves), root);
  EXPECT_EQ(RootFromLeafHashes(Prefix(leaves, 2)), n01);
  EXPECT_EQ(RootFromLeafHashes(Prefix(leaves, 1)), l0);
  EXPECT_EQ(client::RootFromLeafHashes(leaves), root);

  // Audit paths: siblings from the leaf up.
  EXPECT_THAT(*InclusionProof(leaves, 0), ElementsAre(l1, l2));
  EXPECT_THAT(*InclusionProof(leaves, 1), ElementsAre(l0, l2));
  EXPECT_THAT(*InclusionProof(leaves, 2), ElementsAre(n01));
  for (uint64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(client::VerifyInclusion(leaves[i], i, 3,
                                        *InclusionProof(leaves, i), root)
                    .ok());
  }

  // Consistency 1 -> 3: l0 is the old head; l1 and l2 rebuild the new one.
  // Consistency 2 -> 3: n01 is the old head (the verifier has it); l2 added.
  EXPECT_THAT(*ConsistencyProof(leaves, 1), ElementsAre(l1, l2));
  EXPECT_THAT(*ConsistencyProof(leaves, 2), ElementsAre(l2));
  EXPECT_THAT(*ConsistencyProof(leaves, 3), IsEmpty());
  EXPECT_TRUE(
      client::VerifyConsistency(1, 3, l0, root, *ConsistencyProof(leaves, 1))
          .ok());
  EXPECT_TRUE(
      client::VerifyConsistency(2, 3, n01, root, *ConsistencyProof(leaves, 2))
          .ok());
}

TEST(MerkleTest, RootsMatchRfc6962ReferenceTree) {
  const Leaves leaves = ReferenceLeafHashes();
  EXPECT_EQ(Hex(EmptyRoot()), rfc6962::kEmptyRootHex);
  EXPECT_EQ(Hex(RootFromLeafHashes({})), rfc6962::kEmptyRootHex);
  CompactRange range;
  EXPECT_EQ(Hex(range.Root()), rfc6962::kEmptyRootHex);
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    EXPECT_EQ(Hex(RootFromLeafHashes(Prefix(leaves, n))),
              rfc6962::kRootsHex[n - 1])
        << "size " << n;
    range.Append(leaves[n - 1]);
    EXPECT_EQ(Hex(range.Root()), rfc6962::kRootsHex[n - 1]) << "size " << n;
  }
}

TEST(MerkleTest, InclusionProofsMatchRfc6962ReferenceTree) {
  const Leaves leaves = ReferenceLeafHashes();
  for (const rfc6962::InclusionVector& v : rfc6962::InclusionVectors()) {
    absl::StatusOr<Leaves> proof =
        InclusionProof(Prefix(leaves, v.tree_size), v.leaf_index);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, UnhexAll(v.proof_hex))
        << "leaf " << v.leaf_index << " of " << v.tree_size;
  }
}

TEST(MerkleTest, ConsistencyProofsMatchRfc6962ReferenceTree) {
  const Leaves leaves = ReferenceLeafHashes();
  for (const rfc6962::ConsistencyVector& v : rfc6962::ConsistencyVectors()) {
    absl::StatusOr<Leaves> proof =
        ConsistencyProof(Prefix(leaves, v.second_size), v.first_size);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(*proof, UnhexAll(v.proof_hex))
        << "sizes " << v.first_size << " -> " << v.second_size;
  }
}

TEST(MerkleTest, ProofsOutsideTheTreeAreOutOfRange) {
  const Leaves leaves = ReferenceLeafHashes();
  absl::StatusOr<Leaves> proof = InclusionProof(leaves, 8);
  EXPECT_TRUE(absl::IsOutOfRange(proof.status())) << proof.status();
  EXPECT_EQ(ErrorReason(proof.status()), "LEAF_INDEX_OUT_OF_RANGE");
  EXPECT_TRUE(absl::IsOutOfRange(InclusionProof({}, 0).status()));

  proof = ConsistencyProof(Prefix(leaves, 5), 6);
  EXPECT_TRUE(absl::IsOutOfRange(proof.status())) << proof.status();
  EXPECT_EQ(ErrorReason(proof.status()), "TREE_SIZE_OUT_OF_RANGE");

  // Nothing to prove from the empty tree or to the same tree.
  EXPECT_THAT(*ConsistencyProof(leaves, 0), IsEmpty());
  EXPECT_THAT(*ConsistencyProof({}, 0), IsEmpty());
  EXPECT_THAT(*ConsistencyProof(leaves, 8), IsEmpty());
}

// --- CompactRange -----------------------------------------------------------

TEST(CompactRangeTest, RootEqualsRootFromLeafHashesForEverySize) {
  const Leaves leaves = RandomLeafHashes(kMaxRandomSize, /*seed=*/6962);
  CompactRange range;
  for (uint64_t n = 1; n <= kMaxRandomSize; ++n) {
    range.Append(leaves[n - 1]);
    ASSERT_EQ(range.size(), n);
    ASSERT_EQ(range.frontier().size(), static_cast<size_t>(std::popcount(n)));
    const std::string root = range.Root();
    ASSERT_EQ(root, RootFromLeafHashes(Prefix(leaves, n))) << "size " << n;
    // ... and so does the auditor's independent computation.
    ASSERT_EQ(root, client::RootFromLeafHashes(Prefix(leaves, n)))
        << "size " << n;
  }
}

TEST(CompactRangeTest, ResumesFromSavedFrontier) {
  const Leaves leaves = RandomLeafHashes(100, /*seed=*/9162);
  CompactRange all;
  for (const std::string& leaf : leaves) all.Append(leaf);
  CompactRange prefix;
  for (uint64_t size = 0; size <= leaves.size(); ++size) {
    absl::StatusOr<CompactRange> resumed =
        CompactRange::FromFrontier(prefix.size(), prefix.frontier());
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(resumed->Root(), prefix.Root());
    for (uint64_t i = size; i < leaves.size(); ++i) resumed->Append(leaves[i]);
    EXPECT_EQ(resumed->Root(), all.Root()) << "resumed at " << size;
    if (size < leaves.size()) prefix.Append(leaves[size]);
  }
}

TEST(CompactRangeTest, RejectsMalformedFrontier) {
  const Leaves leaves = RandomLeafHashes(3, /*seed=*/1);
  // Size 3 = 0b11 needs two hashes.
  absl::StatusOr<CompactRange> range =
      CompactRange::FromFrontier(3, {leaves[0]});
  EXPECT_TRUE(absl::IsInvalidArgument(range.status()));
  EXPECT_EQ(ErrorReason(range.status()), "BAD_FRONTIER");
  range = CompactRange::FromFrontier(3, {leaves[0], "short"});
  EXPECT_TRUE(absl::IsInvalidArgument(range.status()));
  range = CompactRange::FromFrontier(0, {leaves[0]});
  EXPECT_TRUE(absl::IsInvalidArgument(range.status()));
}

// --- Random trees, generation checked by the independent verifier ----------

// Every leaf of every tree up to kExhaustiveUpTo leaves, sampled leaves of
// larger trees; all sizes 1..1024.
TEST(MerkleRandomTreeTest, InclusionProofsVerifyAndTamperingFails) {
  const Leaves leaves = RandomLeafHashes(kMaxRandomSize, /*seed=*/42);
  const std::vector<std::string> roots = PrefixRoots(leaves);
  std::mt19937_64 rng(7);
  uint64_t proofs = 0;
  for (uint64_t n = 1; n <= kMaxRandomSize; ++n) {
    std::vector<uint64_t> indexes;
    if (n <= kExhaustiveUpTo) {
      for (uint64_t i = 0; i < n; ++i) indexes.push_back(i);
    } else {
      indexes = Sample(n, rng);
    }
    for (uint64_t i : indexes) {
      absl::StatusOr<Leaves> proof = InclusionProof(Prefix(leaves, n), i);
      ASSERT_TRUE(proof.ok()) << proof.status();
      absl::Status verified =
          client::VerifyInclusion(leaves[i], i, n, *proof, roots[n]);
      ASSERT_TRUE(verified.ok())
          << "leaf " << i << " of " << n << ": " << verified;
      ASSERT_THAT(
          AcceptedInclusionCorruptions(leaves[i], i, n, *proof, roots[n]),
          IsEmpty())
          << "leaf " << i << " of " << n;
      ++proofs;
    }
  }
  RecordProperty("inclusion_proofs", static_cast<int>(proofs));
}

// Every (m, n) with m <= n <= kExhaustiveUpTo, sampled m for larger n; all n
// in 1..1024.
TEST(MerkleRandomTreeTest, ConsistencyProofsVerifyAndTamperingFails) {
  const Leaves leaves = RandomLeafHashes(kMaxRandomSize, /*seed=*/43);
  const std::vector<std::string> roots = PrefixRoots(leaves);
  std::mt19937_64 rng(8);
  uint64_t proofs = 0;
  for (uint64_t n = 1; n <= kMaxRandomSize; ++n) {
    std::vector<uint64_t> firsts;
    if (n <= kExhaustiveUpTo) {
      for (uint64_t m = 0; m <= n; ++m) firsts.push_back(m);
    } else {
      firsts = Sample(n, rng);
      firsts.push_back(n);
    }
    for (uint64_t m : firsts) {
      absl::StatusOr<Leaves> proof = ConsistencyProof(Prefix(leaves, n), m);
      ASSERT_TRUE(proof.ok()) << proof.status();
      absl::Status verified =
          client::VerifyConsistency(m, n, roots[m], roots[n], *proof);
      ASSERT_TRUE(verified.ok()) << m << " -> " << n << ": " << verified;
      if (0 < m && m < n) {
        ASSERT_THAT(
            AcceptedConsistencyCorruptions(m, n, roots[m], roots[n], *proof),
            IsEmpty())
            << m << " -> " << n;
      } else {
        ASSERT_THAT(*proof, IsEmpty());
      }
      ++proofs;
    }
  }
  RecordProperty("consistency_proofs", static_cast<int>(proofs));
}

// Proofs over 100,000 leaves: linear work each (a quadratic generator would
// take minutes here).
TEST(MerkleRandomTreeTest, ProofsOverAHundredThousandLeaves) {
  constexpr uint64_t kSize = 100'000;
  const Leaves leaves = RandomLeafHashes(kSize, /*seed=*/100'000);
  CompactRange range;
  std::string root_at_65537;
  for (const std::string& leaf : leaves) {
    range.Append(leaf);
    if (range.size() == 65'537) root_at_65537 = range.Root();
  }
  const std::string root = range.Root();
  EXPECT_EQ(root, RootFromLeafHashes(leaves));

  for (uint64_t i :
       {uint64_t{0}, uint64_t{65'535}, uint64_t{65'536}, uint64_t{99'999}}) {
    absl::StatusOr<Leaves> proof = InclusionProof(leaves, i);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(client::VerifyInclusion(leaves[i], i, kSize, *proof, root).ok())
        << "leaf " << i;
  }
  absl::StatusOr<Leaves> proof = ConsistencyProof(leaves, 65'537);
  ASSERT_TRUE(proof.ok()) << proof.status();
  EXPECT_TRUE(
      client::VerifyConsistency(65'537, kSize, root_at_65537, root, *proof)
          .ok());
}

}  // namespace
}  // namespace careseal::audit
