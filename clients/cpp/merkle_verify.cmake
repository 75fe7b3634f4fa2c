# careseal_merkle_verify: offline verification of the audit log's Merkle
# proofs (RFC 9162 section 2.1) for auditors. OpenSSL and Abseil only: it must
# never depend on services/ (its point is to check the server independently).
careseal_library(careseal_merkle_verify
  SOURCES merkle_verify.cc
  DEPS OpenSSL::Crypto absl::status absl::statusor absl::strings absl::span)
