// Offline verification of the audit log's Merkle proofs (RFC 6962 / RFC 9162
// section 2.1, SHA-256), for an auditor who trusts nothing but a signed
// checkpoint (tree size, root hash).
//
//   leaf hash  SHA-256(0x00 || entry)      node hash  SHA-256(0x01 || l || r)
//   empty tree SHA-256("")
//
// This code deliberately shares nothing with the server's tree
// (services/common/audit/merkle.h): it hashes with OpenSSL directly and
// follows the verification algorithms of RFC 9162 sections 2.1.3.2 and
// 2.1.4.2 step by step, so that a bug on one side cannot hide the same bug on
// the other.
//
// Every hash (leaf hash, root, proof element) is raw bytes, exactly 32 long.
// A failed check is INVALID_ARGUMENT whose message says what did not match
// and never contains entry data. All functions are pure and thread-safe.
#ifndef CARESEAL_CLIENTS_CPP_MERKLE_VERIFY_H_
#define CARESEAL_CLIENTS_CPP_MERKLE_VERIFY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace careseal::client {

// Size of every Merkle tree hash (SHA-256), in bytes.
inline constexpr size_t kMerkleHashSize = 32;

// SHA-256(0x00 || data): the leaf hash of one exported entry's bytes.
std::string LeafHash(absl::string_view data);

// The tree head (MTH) of the tree with these leaf hashes, SHA-256("") when
// there are none. One pass, O(log n) memory: for recomputing a whole tree
// from an export and comparing it with a checkpoint's root.
std::string RootFromLeafHashes(absl::Span<const std::string> leaf_hashes);

// Checks that `leaf_hash` is leaf number `leaf_index` (0-based) of the tree of
// size `tree_size` whose head is `root`, given its audit path `proof`
// (RFC 9162 section 2.1.3.2).
// Errors (INVALID_ARGUMENT): a hash that is not 32 bytes; "leaf index out of
// range" (leaf_index >= tree_size); "proof has N hashes, expected M";
// "inclusion proof does not lead to the checkpoint root".
absl::Status VerifyInclusion(absl::string_view leaf_hash, uint64_t leaf_index,
                             uint64_t tree_size,
                             absl::Span<const std::string> proof,
                             absl::string_view root);

// Checks that the tree of size `first_size` with head `first_root` is a prefix
// of the tree of size `second_size` with head `second_root`, given the
// consistency proof `proof` (RFC 9162 section 2.1.4.2).
// Sizes 0 < first < second follow the RFC; the edge cases are:
//   first == second: proof must be empty and the roots equal;
//   first == 0: proof must be empty and first_root must be SHA-256("") (the
//     head of the empty tree; any tree extends it).
// Errors (INVALID_ARGUMENT): a hash that is not 32 bytes; first_size >
// second_size; "proof has N hashes, expected M"; a root that the proof does
// not lead to.
absl::Status VerifyConsistency(uint64_t first_size, uint64_t second_size,
                               absl::string_view first_root,
                               absl::string_view second_root,
                               absl::Span<const std::string> proof);

}  // namespace careseal::client

#endif  // CARESEAL_CLIENTS_CPP_MERKLE_VERIFY_H_
