// The set of instrument definitions a deployment serves, every version kept
// (responses record the version answered), and the built-in definitions.
#ifndef CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_REGISTRY_H_
#define CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_REGISTRY_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "services/followup/instruments/instrument.h"

namespace careseal::followup {

// Immutable after Create(); thread-safe for concurrent readers. Pointers it
// returns live as long as the registry.
class InstrumentRegistry {
 public:
  // Validates every definition (ValidateInstrument) and rejects a repeated
  // (id, version). Errors: INVALID_ARGUMENT (INVALID_INSTRUMENT_DEFINITION).
  static absl::StatusOr<InstrumentRegistry> Create(
      std::vector<Instrument> instruments);

  // The definition with this id and version (0: the current, i.e. highest,
  // version), or nullptr.
  const Instrument* Find(absl::string_view id, int version = 0) const;

  // The current version of every instrument, in the order first given.
  std::vector<const Instrument*> Current() const;

  // Every version of every instrument.
  const std::vector<Instrument>& All() const { return instruments_; }

 private:
  explicit InstrumentRegistry(std::vector<Instrument> instruments)
      : instruments_(std::move(instruments)) {}

  std::vector<Instrument> instruments_;
};

// The built-in definitions as JSON text (one document per instrument
// version), in display order: phq-9, gad-7, side-effects, blood-pressure,
// cssrs-screener, home-safe.
const std::vector<absl::string_view>& BuiltInInstrumentJson();

// The built-in definitions, parsed once. A definition that fails to parse is
// a programming error caught by the unit tests; it aborts the process.
const InstrumentRegistry& BuiltInInstruments();

}  // namespace careseal::followup

#endif  // CARESEAL_SERVICES_FOLLOWUP_INSTRUMENTS_REGISTRY_H_
