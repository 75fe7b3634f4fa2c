#include "services/followup/instruments/registry.h"

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::followup {

absl::StatusOr<InstrumentRegistry> InstrumentRegistry::Create(
    std::vector<Instrument> instruments) {
  absl::flat_hash_set<std::pair<std::string, int>> seen;
  for (const Instrument& instrument : instruments) {
    RETURN_IF_ERROR(ValidateInstrument(instrument));
    if (!seen.emplace(instrument.id, instrument.version).second) {
      return Error(absl::StatusCode::kInvalidArgument, kReasonInvalidInstrument,
                   absl::StrCat("instrument \"", instrument.id, "\" version ",
                                instrument.version, " is defined twice"));
    }
  }
  return InstrumentRegistry(std::move(instruments));
}

const Instrument* InstrumentRegistry::Find(absl::string_view id,
                                           int version) const {
  const Instrument* found = nullptr;
  for (const Instrument& instrument : instruments_) {
    if (instrument.id != id) continue;
    if (version != 0) {
      if (instrument.version == version) return &instrument;
    } else if (found == nullptr || instrument.version > found->version) {
      found = &instrument;
    }
  }
  return found;
}

std::vector<const Instrument*> InstrumentRegistry::Current() const {
  std::vector<const Instrument*> current;
  absl::flat_hash_set<absl::string_view> seen;
  for (const Instrument& instrument : instruments_) {
    if (seen.insert(instrument.id).second) {
      current.push_back(Find(instrument.id));
    }
  }
  return current;
}

const InstrumentRegistry& BuiltInInstruments() {
  static const InstrumentRegistry* const registry = [] {
    std::vector<Instrument> instruments;
    for (absl::string_view json : BuiltInInstrumentJson()) {
      absl::StatusOr<Instrument> instrument = ParseInstrumentJson(json);
      if (!instrument.ok()) {
        std::fprintf(stderr, "built-in instrument definition is invalid: %s\n",
                     instrument.status().ToString().c_str());
        std::abort();
      }
      instruments.push_back(*std::move(instrument));
    }
    absl::StatusOr<InstrumentRegistry> created =
        InstrumentRegistry::Create(std::move(instruments));
    if (!created.ok()) {
      std::fprintf(stderr, "built-in instrument registry is invalid: %s\n",
                   created.status().ToString().c_str());
      std::abort();
    }
    return new InstrumentRegistry(*std::move(created));
  }();
  return *registry;
}

}  // namespace careseal::followup
