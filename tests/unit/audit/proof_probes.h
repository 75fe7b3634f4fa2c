// Tampering with Merkle proofs: every way a proof, index, size or root can be
// wrong that the verifier (clients/cpp/merkle_verify.h) must reject. Modelled
// on the probes of transparency-dev/merkle's verify_test.go.
//
// Not probed: size + 1. A tree head binds its size only through the signed
// checkpoint; e.g. the path of leaf 0 in a 3-leaf tree, [leaf 1, leaf 2], also
// "verifies" leaf 0 in a 4-leaf tree whose root happens to equal the 3-leaf
// root. The RFC algorithms cannot (and need not) tell the two apart, because
// an auditor takes the size from the same signed checkpoint as the root.
#ifndef CARESEAL_TESTS_UNIT_AUDIT_PROOF_PROBES_H_
#define CARESEAL_TESTS_UNIT_AUDIT_PROOF_PROBES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/merkle_verify.h"

namespace careseal::testing {

inline std::string Unhex(const char* hex) {
  return absl::HexStringToBytes(hex);
}
inline std::string Hex(const std::string& bytes) {
  return absl::BytesToHexString(bytes);
}

inline std::vector<std::string> UnhexAll(const std::vector<const char*>& hex) {
  std::vector<std::string> out;
  for (const char* h : hex) out.push_back(Unhex(h));
  return out;
}

// A 32-byte hash that is no node of any test tree.
inline std::string SomeHash() {
  return Unhex(
      "abacaba000000000000000000000000000000000000000000060061e00123456");
}

// `hash` with bit `bit` (0..255) flipped.
inline std::string FlipBit(std::string hash, size_t bit) {
  hash[bit / 8] = static_cast<char>(hash[bit / 8] ^ (1 << (bit % 8)));
  return hash;
}

inline std::vector<std::string> With(std::vector<std::string> proof, size_t at,
                                     const std::string& hash) {
  proof.insert(proof.begin() + static_cast<std::ptrdiff_t>(at), hash);
  return proof;
}

inline std::vector<std::string> Without(std::vector<std::string> proof,
                                        size_t at) {
  proof.erase(proof.begin() + static_cast<std::ptrdiff_t>(at));
  return proof;
}

// Each tampered variant of a valid inclusion proof that the verifier wrongly
// accepts (or rejects with another code than INVALID_ARGUMENT), by name.
// Empty when every variant fails as it should.
inline std::vector<std::string> AcceptedInclusionCorruptions(
    const std::string& leaf_hash, uint64_t index, uint64_t size,
    const std::vector<std::string>& proof, const std::string& root) {
  struct Probe {
    std::string name;
    std::string leaf_hash;
    uint64_t index;
    uint64_t size;
    std::vector<std::string> proof;
    std::string root;
  };
  std::vector<Probe> probes = {
      {"index - 1", leaf_hash, index - 1, size, proof, root},
      {"index + 1", leaf_hash, index + 1, size, proof, root},
      {"index ^ 1", leaf_hash, index ^ 1, size, proof, root},
      {"index ^ 2", leaf_hash, index ^ 2, size, proof, root},
      {"size * 2", leaf_hash, index, size * 2, proof, root},
      {"size / 2", leaf_hash, index, size / 2, proof, root},
      {"size 0", leaf_hash, index, 0, proof, root},
      {"other leaf", SomeHash(), index, size, proof, root},
      {"leaf bit flipped", FlipBit(leaf_hash, 200), index, size, proof, root},
      {"short leaf", "WrongLeaf", index, size, proof, root},
      {"empty-tree root", leaf_hash, index, size, proof,
       client::RootFromLeafHashes({})},
      {"other root", leaf_hash, index, size, proof, SomeHash()},
      {"root bit flipped", leaf_hash, index, size, proof, FlipBit(root, 7)},
      {"empty hash appended", leaf_hash, index, size,
       With(proof, proof.size(), ""), root},
      {"root appended", leaf_hash, index, size, With(proof, proof.size(), root),
       root},
      {"empty hash prepended", leaf_hash, index, size, With(proof, 0, ""),
       root},
      {"root prepended", leaf_hash, index, size, With(proof, 0, root), root},
      {"leaf prepended", leaf_hash, index, size, With(proof, 0, leaf_hash),
       root},
  };
  for (size_t i = 0; i < proof.size(); ++i) {
    // One bit flipped per hash, at a different position in each.
    const size_t bit = (i * 37 + 3) % 256;
    std::vector<std::string> flipped = proof;
    flipped[i] = FlipBit(flipped[i], bit);
    probes.push_back({absl::StrCat("proof[", i, "] bit ", bit, " flipped"),
                      leaf_hash, index, size, flipped, root});
    probes.push_back({absl::StrCat("proof[", i, "] dropped"), leaf_hash, index,
                      size, Without(proof, i), root});
    probes.push_back({absl::StrCat("hash inserted before proof[", i, "]"),
                      leaf_hash, index, size, With(proof, i, SomeHash()),
                      root});
  }
  if (proof.size() >= 2) {
    std::vector<std::string> swapped = proof;
    std::swap(swapped[0], swapped[1]);
    probes.push_back({"proof[0] and proof[1] swapped", leaf_hash, index, size,
                      swapped, root});
  }
  std::vector<std::string> accepted;
  for (const Probe& p : probes) {
    absl::Status status =
        client::VerifyInclusion(p.leaf_hash, p.index, p.size, p.proof, p.root);
    if (!absl::IsInvalidArgument(status)) {
      accepted.push_back(absl::StrCat(p.name, ": ", status.ToString()));
    }
  }
  return accepted;
}

// As above, for a valid consistency proof between 0 < first < second.
inline std::vector<std::string> AcceptedConsistencyCorruptions(
    uint64_t first, uint64_t second, const std::string& first_root,
    const std::string& second_root, const std::vector<std::string>& proof) {
  struct Probe {
    std::string name;
    uint64_t first;
    uint64_t second;
    std::string first_root;
    std::string second_root;
    std::vector<std::string> proof;
  };
  const std::string& r1 = first_root;
  const std::string& r2 = second_root;
  std::vector<Probe> probes = {
      {"first - 1", first - 1, second, r1, r2, proof},
      {"first + 1", first + 1, second, r1, r2, proof},
      {"first ^ 2", first ^ 2, second, r1, r2, proof},
      {"second * 2", first, second * 2, r1, r2, proof},
      {"second / 2", first, second / 2, r1, r2, proof},
      {"wrong first root", first, second, SomeHash(), r2, proof},
      {"wrong second root", first, second, r1, SomeHash(), proof},
      {"first root bit flipped", first, second, FlipBit(r1, 9), r2, proof},
      {"second root bit flipped", first, second, r1, FlipBit(r2, 250), proof},
      {"short root", first, second, "WrongRoot", r2, proof},
      {"swapped roots", first, second, r2, r1, proof},
      {"empty proof", first, second, r1, r2, {}},
      {"empty hash appended", first, second, r1, r2,
       With(proof, proof.size(), "")},
      {"first root appended", first, second, r1, r2,
       With(proof, proof.size(), r1)},
      {"second root appended", first, second, r1, r2,
       With(proof, proof.size(), r2)},
      {"empty hash prepended", first, second, r1, r2, With(proof, 0, "")},
      {"first root prepended", first, second, r1, r2, With(proof, 0, r1)},
      {"second root prepended", first, second, r1, r2, With(proof, 0, r2)},
      {"proof[0] repeated", first, second, r1, r2, With(proof, 0, proof[0])},
  };
  for (size_t i = 0; i < proof.size(); ++i) {
    const size_t bit = (i * 53 + 4) % 256;
    std::vector<std::string> flipped = proof;
    flipped[i] = FlipBit(flipped[i], bit);
    probes.push_back({absl::StrCat("proof[", i, "] bit ", bit, " flipped"),
                      first, second, r1, r2, flipped});
    probes.push_back({absl::StrCat("proof[", i, "] dropped"), first, second, r1,
                      r2, Without(proof, i)});
    probes.push_back({absl::StrCat("hash inserted before proof[", i, "]"),
                      first, second, r1, r2, With(proof, i, SomeHash())});
  }
  if (proof.size() >= 2) {
    std::vector<std::string> swapped = proof;
    std::swap(swapped[0], swapped[1]);
    probes.push_back(
        {"proof[0] and proof[1] swapped", first, second, r1, r2, swapped});
  }
  std::vector<std::string> accepted;
  for (const Probe& p : probes) {
    absl::Status status = client::VerifyConsistency(
        p.first, p.second, p.first_root, p.second_root, p.proof);
    if (!absl::IsInvalidArgument(status)) {
      accepted.push_back(absl::StrCat(p.name, ": ", status.ToString()));
    }
  }
  return accepted;
}

}  // namespace careseal::testing

#endif  // CARESEAL_TESTS_UNIT_AUDIT_PROOF_PROBES_H_
