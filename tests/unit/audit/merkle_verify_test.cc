// The auditor's verifier (careseal_merkle_verify) on its own, against the
// published RFC 6962 reference tree: it links nothing from services/.
#include "clients/cpp/merkle_verify.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/audit/proof_probes.h"
#include "tests/unit/audit/rfc6962_vectors.h"

namespace careseal::client {
namespace {

using ::careseal::testing::AcceptedConsistencyCorruptions;
using ::careseal::testing::AcceptedInclusionCorruptions;
using ::careseal::testing::Hex;
using ::careseal::testing::SomeHash;
using ::careseal::testing::Unhex;
using ::careseal::testing::UnhexAll;
namespace rfc6962 = ::careseal::testing::rfc6962;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> ReferenceLeafHashes() {
  std::vector<std::string> hashes;
  for (const char* hex : rfc6962::kLeafDataHex) {
    hashes.push_back(LeafHash(Unhex(hex)));
  }
  return hashes;
}

std::string ReferenceRoot(uint64_t size) {
  return Unhex(rfc6962::kRootsHex[size - 1]);
}

void ExpectInvalid(const absl::Status& status, const std::string& message) {
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(message));
}

TEST(MerkleVerifyTest, RootsMatchRfc6962ReferenceTree) {
  const std::vector<std::string> leaves = ReferenceLeafHashes();
  // The one-leaf tree's head is the leaf hash SHA-256(0x00).
  EXPECT_EQ(Hex(leaves[0]), rfc6962::kRootsHex[0]);
  EXPECT_EQ(Hex(RootFromLeafHashes({})), rfc6962::kEmptyRootHex);
  for (size_t n = 1; n <= leaves.size(); ++n) {
    EXPECT_EQ(Hex(RootFromLeafHashes(absl::MakeConstSpan(leaves).first(n))),
              rfc6962::kRootsHex[n - 1])
        << "size " << n;
  }
}

TEST(MerkleVerifyTest, PublishedInclusionProofsVerifyAndTamperingFails) {
  const std::vector<std::string> leaves = ReferenceLeafHashes();
  for (const rfc6962::InclusionVector& v : rfc6962::InclusionVectors()) {
    SCOPED_TRACE(::testing::Message()
                 << "leaf " << v.leaf_index << " of " << v.tree_size);
    const std::vector<std::string> proof = UnhexAll(v.proof_hex);
    const std::string root = ReferenceRoot(v.tree_size);
    EXPECT_TRUE(VerifyInclusion(leaves[v.leaf_index], v.leaf_index, v.tree_size,
                                proof, root)
                    .ok());
    EXPECT_THAT(AcceptedInclusionCorruptions(leaves[v.leaf_index], v.leaf_index,
                                             v.tree_size, proof, root),
                IsEmpty());
  }
}

TEST(MerkleVerifyTest, PublishedConsistencyProofsVerifyAndTamperingFails) {
  for (const rfc6962::ConsistencyVector& v : rfc6962::ConsistencyVectors()) {
    SCOPED_TRACE(::testing::Message()
                 << "sizes " << v.first_size << " -> " << v.second_size);
    const std::vector<std::string> proof = UnhexAll(v.proof_hex);
    const std::string first_root = ReferenceRoot(v.first_size);
    const std::string second_root = ReferenceRoot(v.second_size);
    EXPECT_TRUE(VerifyConsistency(v.first_size, v.second_size, first_root,
                                  second_root, proof)
                    .ok());
    if (v.first_size < v.second_size) {
      EXPECT_THAT(
          AcceptedConsistencyCorruptions(v.first_size, v.second_size,
                                         first_root, second_root, proof),
          IsEmpty());
    }
  }
}

TEST(MerkleVerifyTest, InclusionErrorsSayWhatIsWrong) {
  const std::vector<std::string> leaves = ReferenceLeafHashes();
  const rfc6962::InclusionVector& v = rfc6962::InclusionVectors()[2];
  ASSERT_EQ(v.leaf_index, 5u);
  const std::vector<std::string> proof = UnhexAll(v.proof_hex);
  const std::string root = ReferenceRoot(8);

  ExpectInvalid(VerifyInclusion(leaves[5], 8, 8, proof, root),
                "leaf index out of range");
  ExpectInvalid(VerifyInclusion(leaves[0], 0, 0, {}, root),
                "leaf index out of range");
  ExpectInvalid(
      VerifyInclusion(leaves[5], 5, 8,
                      std::vector<std::string>(proof.begin(), proof.end() - 1),
                      root),
      "proof has 2 hashes, expected 3");
  ExpectInvalid(VerifyInclusion(leaves[4], 5, 8, proof, root),
                "inclusion proof does not lead to the checkpoint root");
  ExpectInvalid(VerifyInclusion(leaves[5], 5, 8, proof, ReferenceRoot(7)),
                "inclusion proof does not lead to the checkpoint root");
  ExpectInvalid(VerifyInclusion("short", 5, 8, proof, root),
                "leaf hash has 5 bytes, expected 32");
  ExpectInvalid(VerifyInclusion(leaves[5], 5, 8, proof, root + "x"),
                "root hash has 33 bytes, expected 32");
  std::vector<std::string> bad = proof;
  bad[1].pop_back();
  ExpectInvalid(VerifyInclusion(leaves[5], 5, 8, bad, root),
                "proof hash 1 has 31 bytes, expected 32");
}

TEST(MerkleVerifyTest, SingleLeafTreeNeedsNoProof) {
  const std::string leaf = LeafHash("only entry");
  EXPECT_TRUE(VerifyInclusion(leaf, 0, 1, {}, leaf).ok());
  ExpectInvalid(VerifyInclusion(leaf, 0, 1, {}, SomeHash()),
                "does not lead to the checkpoint root");
  ExpectInvalid(VerifyInclusion(leaf, 0, 1, {leaf}, leaf),
                "proof has 1 hashes, expected 0");
}

TEST(MerkleVerifyTest, ConsistencyEdgeCases) {
  const std::string empty = RootFromLeafHashes({});
  const std::string r1 = ReferenceRoot(1);
  const std::string r2 = ReferenceRoot(2);

  // Every tree extends the empty tree, whose head is SHA-256("").
  EXPECT_TRUE(VerifyConsistency(0, 0, empty, empty, {}).ok());
  EXPECT_TRUE(VerifyConsistency(0, 2, empty, r2, {}).ok());
  ExpectInvalid(VerifyConsistency(0, 2, r1, r2, {}),
                "checkpoint of tree size 0");
  ExpectInvalid(VerifyConsistency(0, 2, empty, r2, {empty}),
                "proof has 1 hashes, expected 0");

  // Equal sizes: equal roots, nothing to prove.
  EXPECT_TRUE(VerifyConsistency(2, 2, r2, r2, {}).ok());
  ExpectInvalid(VerifyConsistency(2, 2, r2, r1, {}),
                "same tree size 2 have different roots");
  ExpectInvalid(VerifyConsistency(2, 2, r2, r2, {r2}),
                "proof has 1 hashes, expected 0");

  // A log never shrinks.
  ExpectInvalid(VerifyConsistency(2, 1, r2, r1, {}),
                "first tree size 2 is larger than second tree size 1");

  // 0 < first < second needs a proof.
  ExpectInvalid(VerifyConsistency(1, 2, r1, r2, {}),
                "proof has 0 hashes, expected 1");
  const std::vector<std::string> leaves = ReferenceLeafHashes();
  EXPECT_TRUE(VerifyConsistency(1, 2, r1, r2, {leaves[1]}).ok());
  ExpectInvalid(VerifyConsistency(1, 2, r1, r2, {leaves[2]}),
                "does not lead to the second checkpoint root");
}

TEST(MerkleVerifyTest, ConsistencyErrorsNameTheRootThatDiffers) {
  const rfc6962::ConsistencyVector& v = rfc6962::ConsistencyVectors()[2];
  ASSERT_EQ(v.first_size, 6u);
  ASSERT_EQ(v.second_size, 8u);
  const std::vector<std::string> proof = UnhexAll(v.proof_hex);
  ExpectInvalid(
      VerifyConsistency(6, 8, ReferenceRoot(5), ReferenceRoot(8), proof),
      "does not lead to the first checkpoint root");
  ExpectInvalid(
      VerifyConsistency(6, 8, ReferenceRoot(6), ReferenceRoot(7), proof),
      "does not lead to the second checkpoint root");
  ExpectInvalid(VerifyConsistency(6, 8, ReferenceRoot(6), ReferenceRoot(8),
                                  {proof[0], proof[1]}),
                "proof has 2 hashes, expected 3");
}

}  // namespace
}  // namespace careseal::client
