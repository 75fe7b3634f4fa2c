#include "services/followup/instruments/instrument.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "services/common/macros.h"
#include "services/common/status.h"

namespace careseal::followup {
namespace {

using Json = nlohmann::json;

template <typename E>
struct NamedEnum {
  E value;
  absl::string_view name;
};

constexpr NamedEnum<ItemType> kItemTypes[] = {
    {ItemType::kInteger, "INTEGER"},
    {ItemType::kChoice, "CHOICE"},
    {ItemType::kBoolean, "BOOLEAN"},
    {ItemType::kBloodPressure, "BLOOD_PRESSURE"},
};

constexpr NamedEnum<ScoringRule> kScoringRules[] = {
    {ScoringRule::kSum, "SUM"},
    {ScoringRule::kCssrsScreener, "CSSRS_SCREENER"},
    {ScoringRule::kBloodPressure, "BLOOD_PRESSURE"},
    {ScoringRule::kMaxSeverity, "MAX_SEVERITY"},
    {ScoringRule::kNone, "NONE"},
};

constexpr NamedEnum<ResponseFlag> kResponseFlags[] = {
    {ResponseFlag::kPhq9Item9Positive, "PHQ9_ITEM9_POSITIVE"},
    {ResponseFlag::kCssrsHighRisk, "CSSRS_HIGH_RISK"},
    {ResponseFlag::kCssrsModerateRisk, "CSSRS_MODERATE_RISK"},
    {ResponseFlag::kCssrsLowRisk, "CSSRS_LOW_RISK"},
    {ResponseFlag::kBloodPressureCrisis, "BLOOD_PRESSURE_CRISIS"},
    {ResponseFlag::kBloodPressureHigh, "BLOOD_PRESSURE_HIGH"},
    {ResponseFlag::kSideEffectSevere, "SIDE_EFFECT_SEVERE"},
    {ResponseFlag::kHomeSafeNotConfirmed, "HOME_SAFE_NOT_CONFIRMED"},
};

template <typename E, size_t N>
absl::string_view NameOf(const NamedEnum<E> (&table)[N], E value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "UNKNOWN";
}

template <typename E, size_t N>
std::optional<E> Parse(const NamedEnum<E> (&table)[N], absl::string_view name) {
  for (const auto& entry : table) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return Error(absl::StatusCode::kInvalidArgument, kReasonInvalidInstrument,
               absl::StrCat("instrument definition ", where, ": ", what));
}

bool IsIdChar(char c, bool allow_dash, bool allow_underscore) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         (allow_dash && c == '-') || (allow_underscore && c == '_');
}

bool IsValidId(absl::string_view id, bool allow_dash, bool allow_underscore) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [&](char c) {
    return IsIdChar(c, allow_dash, allow_underscore);
  });
}

// ---------------------------------------------------------------------------
// Validation.

absl::Status ValidateItem(const Instrument& instrument, size_t index,
                          const absl::flat_hash_map<std::string, size_t>& ids) {
  const InstrumentItem& item = instrument.items[index];
  const std::string where = absl::StrCat("items[", index, "] (", item.id, ")");
  if (item.text.empty()) return Invalid(where, "text is empty");
  const bool is_choice = item.type == ItemType::kChoice;
  if (is_choice && item.options.empty()) {
    return Invalid(where, "a CHOICE item needs options");
  }
  if (!is_choice && !item.options.empty()) {
    return Invalid(where, "only CHOICE items have options");
  }
  absl::flat_hash_set<int> values;
  for (const AnswerOption& option : item.options) {
    if (option.label.empty()) return Invalid(where, "an option has no label");
    if (!values.insert(option.value).second) {
      return Invalid(where, absl::StrCat("option value ", option.value,
                                         " appears more than once"));
    }
  }
  if (item.type == ItemType::kInteger) {
    if (item.min_value > item.max_value) {
      return Invalid(where, "min_value is above max_value");
    }
  } else if (item.min_value != 0 || item.max_value != 0 || !item.unit.empty()) {
    return Invalid(where,
                   "min_value, max_value and unit are for INTEGER items");
  }
  if (item.enable_when) {
    const EnableWhen& when = *item.enable_when;
    auto it = ids.find(when.item_id);
    if (it == ids.end() || it->second >= index) {
      return Invalid(where,
                     absl::StrCat("enable_when must name an earlier item; "
                                  "\"",
                                  when.item_id, "\" is not one"));
    }
    const InstrumentItem& controller = instrument.items[it->second];
    switch (controller.type) {
      case ItemType::kBoolean:
        if (!std::holds_alternative<bool>(when.equals)) {
          return Invalid(where, "enable_when on a BOOLEAN item needs a bool");
        }
        break;
      case ItemType::kChoice:
      case ItemType::kInteger:
        if (!std::holds_alternative<int>(when.equals)) {
          return Invalid(where, "enable_when on a number item needs an int");
        }
        break;
      case ItemType::kBloodPressure:
        return Invalid(where,
                       "enable_when cannot depend on a BLOOD_PRESSURE item");
    }
  }
  return absl::OkStatus();
}

// Lowest and highest value an item can contribute to a score.
std::pair<int, int> ItemRange(const InstrumentItem& item) {
  if (item.type == ItemType::kInteger) return {item.min_value, item.max_value};
  int lo = std::numeric_limits<int>::max();
  int hi = std::numeric_limits<int>::min();
  for (const AnswerOption& option : item.options) {
    lo = std::min(lo, option.value);
    hi = std::max(hi, option.value);
  }
  return {lo, hi};
}

absl::Status RequireItem(const Instrument& instrument, absl::string_view rule,
                         absl::string_view item_id, ItemType type) {
  const InstrumentItem* item = instrument.FindItem(item_id);
  if (item == nullptr || item->type != type) {
    return Invalid(rule, absl::StrCat("needs a ", ItemTypeName(type),
                                      " item \"", item_id, "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateScoring(const Instrument& in) {
  const absl::string_view rule = ScoringRuleName(in.scoring_rule);
  const std::string where = absl::StrCat("scoring_rule ", rule);
  std::vector<const InstrumentItem*> scored;
  for (const InstrumentItem& item : in.items) {
    if (item.scored) scored.push_back(&item);
  }
  int expected_min = 0;
  int expected_max = 0;
  switch (in.scoring_rule) {
    case ScoringRule::kSum:
    case ScoringRule::kMaxSeverity: {
      if (scored.empty()) return Invalid(where, "no item is scored");
      expected_min = in.scoring_rule == ScoringRule::kSum
                         ? 0
                         : std::numeric_limits<int>::max();
      expected_max = in.scoring_rule == ScoringRule::kSum
                         ? 0
                         : std::numeric_limits<int>::min();
      for (const InstrumentItem* item : scored) {
        if (item->type != ItemType::kChoice &&
            item->type != ItemType::kInteger) {
          return Invalid(where, absl::StrCat("scored item \"", item->id,
                                             "\" is not a number"));
        }
        // Every scored item is always asked, so that a score is well defined.
        if (!item->required || item->enable_when) {
          return Invalid(
              where, absl::StrCat("scored item \"", item->id,
                                  "\" must be required and always enabled"));
        }
        auto [lo, hi] = ItemRange(*item);
        if (in.scoring_rule == ScoringRule::kSum) {
          expected_min += lo;
          expected_max += hi;
        } else {
          expected_min = std::min(expected_min, lo);
          expected_max = std::max(expected_max, hi);
        }
      }
      break;
    }
    case ScoringRule::kCssrsScreener:
      for (absl::string_view id :
           {kCssrsWishDead, kCssrsThoughts, kCssrsMethod, kCssrsIntent,
            kCssrsPlan, kCssrsBehavior, kCssrsBehaviorRecent}) {
        RETURN_IF_ERROR(RequireItem(in, where, id, ItemType::kBoolean));
      }
      expected_min = 0;
      expected_max = 3;
      break;
    case ScoringRule::kBloodPressure: {
      const auto count = std::count_if(
          in.items.begin(), in.items.end(), [](const InstrumentItem& item) {
            return item.type == ItemType::kBloodPressure;
          });
      if (count != 1)
        return Invalid(where, "needs exactly one BLOOD_PRESSURE item");
      [[fallthrough]];
    }
    case ScoringRule::kNone:
      if (!scored.empty())
        return Invalid(where, "has no score; no item is scored");
      break;
  }
  if (in.min_score != expected_min || in.max_score != expected_max) {
    return Invalid(where, absl::StrCat("score range must be ", expected_min,
                                       "..", expected_max));
  }
  return absl::OkStatus();
}

absl::Status ValidateBands(const Instrument& in) {
  if (!in.HasScore()) {
    if (!in.bands.empty())
      return Invalid("bands", "an unscored instrument has none");
    return absl::OkStatus();
  }
  if (in.bands.empty())
    return Invalid("bands", "a scored instrument needs bands");
  int next = in.min_score;
  absl::flat_hash_set<std::string> codes;
  for (size_t i = 0; i < in.bands.size(); ++i) {
    const ScoreBand& band = in.bands[i];
    const std::string where = absl::StrCat("bands[", i, "]");
    if (band.min_score != next) {
      return Invalid(
          where, absl::StrCat("must start at ", next, " (no gap or overlap)"));
    }
    if (band.max_score < band.min_score) return Invalid(where, "max below min");
    if (band.code.empty() || band.display_name.empty()) {
      return Invalid(where, "code and display_name are required");
    }
    if (!codes.insert(band.code).second)
      return Invalid(where, "duplicate code");
    next = band.max_score + 1;
  }
  if (next != in.max_score + 1) {
    return Invalid("bands",
                   absl::StrCat("must end at max_score ", in.max_score));
  }
  return absl::OkStatus();
}

absl::Status ValidateSafetyRules(const Instrument& in) {
  absl::flat_hash_set<ResponseFlag> seen;
  for (ResponseFlag flag : in.safety_rules) {
    const std::string where =
        absl::StrCat("safety rule ", ResponseFlagName(flag));
    if (!seen.insert(flag).second) return Invalid(where, "listed twice");
    switch (flag) {
      case ResponseFlag::kPhq9Item9Positive:
        RETURN_IF_ERROR(RequireItem(in, where, kPhq9Item9, ItemType::kChoice));
        break;
      case ResponseFlag::kCssrsHighRisk:
      case ResponseFlag::kCssrsModerateRisk:
      case ResponseFlag::kCssrsLowRisk:
        if (in.scoring_rule != ScoringRule::kCssrsScreener) {
          return Invalid(where, "needs scoring_rule CSSRS_SCREENER");
        }
        break;
      case ResponseFlag::kBloodPressureCrisis:
      case ResponseFlag::kBloodPressureHigh:
        if (in.scoring_rule != ScoringRule::kBloodPressure) {
          return Invalid(where, "needs scoring_rule BLOOD_PRESSURE");
        }
        break;
      case ResponseFlag::kSideEffectSevere:
        if (in.scoring_rule != ScoringRule::kMaxSeverity ||
            in.max_score != kSevereRating) {
          return Invalid(where, absl::StrCat("needs scoring_rule MAX_SEVERITY "
                                             "with ratings up to ",
                                             kSevereRating, " (severe)"));
        }
        break;
      case ResponseFlag::kHomeSafeNotConfirmed: {
        const bool any_boolean = std::any_of(
            in.items.begin(), in.items.end(), [](const InstrumentItem& item) {
              return item.type == ItemType::kBoolean;
            });
        if (!any_boolean) return Invalid(where, "needs BOOLEAN items");
        break;
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// JSON reading, without exceptions: every access is type-checked first.

class ObjectReader {
 public:
  ObjectReader(const Json& json, std::string path)
      : json_(json), path_(std::move(path)) {}

  absl::Status CheckIsObject() const {
    if (!json_.is_object()) return Invalid(path_, "must be an object");
    return absl::OkStatus();
  }

  // nullptr when absent.
  const Json* Get(absl::string_view key) {
    used_.insert(std::string(key));
    auto it = json_.find(std::string(key));
    return it == json_.end() ? nullptr : &*it;
  }

  std::string Path(absl::string_view key) const {
    return absl::StrCat(path_, ".", key);
  }

  absl::Status String(absl::string_view key, bool required, std::string* out) {
    const Json* value = Get(key);
    if (value == nullptr) return Missing(key, required);
    if (!value->is_string()) return Invalid(Path(key), "must be a string");
    *out = value->get<std::string>();
    return absl::OkStatus();
  }

  absl::Status Int(absl::string_view key, bool required, int* out) {
    const Json* value = Get(key);
    if (value == nullptr) return Missing(key, required);
    return ToInt(*value, Path(key), out);
  }

  absl::Status Bool(absl::string_view key, bool required, bool* out) {
    const Json* value = Get(key);
    if (value == nullptr) return Missing(key, required);
    if (!value->is_boolean())
      return Invalid(Path(key), "must be true or false");
    *out = value->get<bool>();
    return absl::OkStatus();
  }

  absl::Status CheckNoUnknownKeys() const {
    for (auto it = json_.begin(); it != json_.end(); ++it) {
      if (!used_.contains(it.key())) {
        return Invalid(Path(it.key()), "unknown key");
      }
    }
    return absl::OkStatus();
  }

  static absl::Status ToInt(const Json& value, const std::string& path,
                            int* out) {
    if (!value.is_number_integer()) return Invalid(path, "must be an integer");
    const auto wide = value.get<int64_t>();
    if (wide < std::numeric_limits<int>::min() ||
        wide > std::numeric_limits<int>::max()) {
      return Invalid(path, "is out of range");
    }
    *out = static_cast<int>(wide);
    return absl::OkStatus();
  }

 private:
  absl::Status Missing(absl::string_view key, bool required) const {
    if (required) return Invalid(Path(key), "is required");
    return absl::OkStatus();
  }

  const Json& json_;
  std::string path_;
  absl::flat_hash_set<std::string> used_;
};

absl::Status ParseOptions(const Json& json, const std::string& path,
                          std::vector<AnswerOption>* out) {
  if (!json.is_array()) return Invalid(path, "must be an array");
  for (size_t i = 0; i < json.size(); ++i) {
    ObjectReader reader(json[i], absl::StrCat(path, "[", i, "]"));
    RETURN_IF_ERROR(reader.CheckIsObject());
    AnswerOption option;
    RETURN_IF_ERROR(reader.Int("value", true, &option.value));
    RETURN_IF_ERROR(reader.String("label", true, &option.label));
    RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
    out->push_back(std::move(option));
  }
  return absl::OkStatus();
}

absl::Status ParseItem(
    const Json& json, const std::string& path,
    const absl::flat_hash_map<std::string, std::vector<AnswerOption>>& sets,
    InstrumentItem* item) {
  ObjectReader reader(json, path);
  RETURN_IF_ERROR(reader.CheckIsObject());
  RETURN_IF_ERROR(reader.String("id", true, &item->id));
  RETURN_IF_ERROR(reader.String("text", true, &item->text));
  std::string type;
  RETURN_IF_ERROR(reader.String("type", true, &type));
  auto parsed_type = ParseItemType(type);
  if (!parsed_type) return Invalid(reader.Path("type"), "unknown item type");
  item->type = *parsed_type;
  // "options": an array, or the name of one of the instrument's option_sets.
  if (const Json* options = reader.Get("options"); options != nullptr) {
    if (options->is_string()) {
      auto it = sets.find(options->get<std::string>());
      if (it == sets.end()) {
        return Invalid(reader.Path("options"), "names no option set");
      }
      item->options = it->second;
    } else {
      RETURN_IF_ERROR(
          ParseOptions(*options, reader.Path("options"), &item->options));
    }
  }
  RETURN_IF_ERROR(reader.Int("min_value", false, &item->min_value));
  RETURN_IF_ERROR(reader.Int("max_value", false, &item->max_value));
  RETURN_IF_ERROR(reader.String("unit", false, &item->unit));
  RETURN_IF_ERROR(reader.Bool("required", true, &item->required));
  RETURN_IF_ERROR(reader.Bool("scored", true, &item->scored));
  RETURN_IF_ERROR(reader.String("loinc_code", false, &item->loinc_code));
  if (const Json* when = reader.Get("enable_when"); when != nullptr) {
    ObjectReader when_reader(*when, reader.Path("enable_when"));
    RETURN_IF_ERROR(when_reader.CheckIsObject());
    EnableWhen enable_when;
    RETURN_IF_ERROR(when_reader.String("item_id", true, &enable_when.item_id));
    const Json* equals = when_reader.Get("equals");
    if (equals == nullptr) {
      return Invalid(when_reader.Path("equals"), "is required");
    }
    if (equals->is_boolean()) {
      enable_when.equals = equals->get<bool>();
    } else {
      int value = 0;
      RETURN_IF_ERROR(
          ObjectReader::ToInt(*equals, when_reader.Path("equals"), &value));
      enable_when.equals = value;
    }
    RETURN_IF_ERROR(when_reader.CheckNoUnknownKeys());
    item->enable_when = std::move(enable_when);
  }
  return reader.CheckNoUnknownKeys();
}

}  // namespace

absl::string_view ItemTypeName(ItemType type) {
  return NameOf(kItemTypes, type);
}
absl::string_view ScoringRuleName(ScoringRule rule) {
  return NameOf(kScoringRules, rule);
}
absl::string_view ResponseFlagName(ResponseFlag flag) {
  return NameOf(kResponseFlags, flag);
}
std::optional<ItemType> ParseItemType(absl::string_view name) {
  return Parse(kItemTypes, name);
}
std::optional<ScoringRule> ParseScoringRule(absl::string_view name) {
  return Parse(kScoringRules, name);
}
std::optional<ResponseFlag> ParseResponseFlag(absl::string_view name) {
  return Parse(kResponseFlags, name);
}

const InstrumentItem* Instrument::FindItem(absl::string_view item_id) const {
  for (const InstrumentItem& item : items) {
    if (item.id == item_id) return &item;
  }
  return nullptr;
}

const ScoreBand* Instrument::FindBand(int score) const {
  for (const ScoreBand& band : bands) {
    if (score >= band.min_score && score <= band.max_score) return &band;
  }
  return nullptr;
}

bool Instrument::EvaluatesRule(ResponseFlag flag) const {
  return std::find(safety_rules.begin(), safety_rules.end(), flag) !=
         safety_rules.end();
}

absl::Status ValidateInstrument(const Instrument& in) {
  if (!IsValidId(in.id, /*allow_dash=*/true, /*allow_underscore=*/false)) {
    return Invalid("id", "must match [a-z0-9-]{1,64}");
  }
  if (in.version < 1) return Invalid("version", "must be 1 or more");
  if (in.display_name.empty()) return Invalid("display_name", "is empty");
  if (in.attribution.empty()) return Invalid("attribution", "is empty");
  if (in.items.empty()) return Invalid("items", "is empty");
  absl::flat_hash_map<std::string, size_t> ids;
  for (size_t i = 0; i < in.items.size(); ++i) {
    const std::string& id = in.items[i].id;
    if (!IsValidId(id, /*allow_dash=*/false, /*allow_underscore=*/true)) {
      return Invalid(absl::StrCat("items[", i, "].id"),
                     "must match [a-z0-9_]{1,64}");
    }
    if (!ids.emplace(id, i).second) {
      return Invalid(absl::StrCat("items[", i, "].id"),
                     absl::StrCat("\"", id, "\" appears more than once"));
    }
    RETURN_IF_ERROR(ValidateItem(in, i, ids));
  }
  RETURN_IF_ERROR(ValidateScoring(in));
  RETURN_IF_ERROR(ValidateBands(in));
  RETURN_IF_ERROR(ValidateSafetyRules(in));
  if (in.response_drop_percent < 0 || in.response_drop_percent > 100) {
    return Invalid("response_drop_percent", "must be 0..100");
  }
  if (!in.HasScore() &&
      (in.response_drop_percent != 0 || in.remission_below != 0)) {
    return Invalid("markers", "an unscored instrument has no markers");
  }
  if (in.remission_below != 0 && (in.remission_below <= in.min_score ||
                                  in.remission_below > in.max_score)) {
    return Invalid("remission_below", "must be within the score range");
  }
  return absl::OkStatus();
}

absl::StatusOr<Instrument> ParseInstrumentJson(absl::string_view text) {
  const Json json = Json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                                /*allow_exceptions=*/false);
  if (json.is_discarded()) return Invalid("$", "is not valid JSON");
  ObjectReader reader(json, "$");
  RETURN_IF_ERROR(reader.CheckIsObject());
  Instrument in;
  RETURN_IF_ERROR(reader.String("id", true, &in.id));
  RETURN_IF_ERROR(reader.Int("version", true, &in.version));
  RETURN_IF_ERROR(reader.String("display_name", true, &in.display_name));
  RETURN_IF_ERROR(reader.String("preamble", false, &in.preamble));
  RETURN_IF_ERROR(
      reader.String("loinc_panel_code", false, &in.loinc_panel_code));
  RETURN_IF_ERROR(
      reader.String("loinc_total_code", false, &in.loinc_total_code));
  std::string rule;
  RETURN_IF_ERROR(reader.String("scoring_rule", true, &rule));
  auto scoring_rule = ParseScoringRule(rule);
  if (!scoring_rule) {
    return Invalid(reader.Path("scoring_rule"), "unknown scoring rule");
  }
  in.scoring_rule = *scoring_rule;
  RETURN_IF_ERROR(reader.Int("min_score", false, &in.min_score));
  RETURN_IF_ERROR(reader.Int("max_score", false, &in.max_score));
  RETURN_IF_ERROR(
      reader.Int("response_drop_percent", false, &in.response_drop_percent));
  RETURN_IF_ERROR(reader.Int("remission_below", false, &in.remission_below));
  RETURN_IF_ERROR(reader.String("attribution", true, &in.attribution));

  absl::flat_hash_map<std::string, std::vector<AnswerOption>> option_sets;
  if (const Json* sets = reader.Get("option_sets"); sets != nullptr) {
    if (!sets->is_object()) {
      return Invalid(reader.Path("option_sets"), "must be an object");
    }
    for (auto it = sets->begin(); it != sets->end(); ++it) {
      RETURN_IF_ERROR(ParseOptions(
          it.value(), absl::StrCat(reader.Path("option_sets"), ".", it.key()),
          &option_sets[it.key()]));
    }
  }

  const Json* items = reader.Get("items");
  if (items == nullptr || !items->is_array()) {
    return Invalid(reader.Path("items"), "must be an array");
  }
  for (size_t i = 0; i < items->size(); ++i) {
    InstrumentItem item;
    RETURN_IF_ERROR(ParseItem((*items)[i],
                              absl::StrCat(reader.Path("items"), "[", i, "]"),
                              option_sets, &item));
    in.items.push_back(std::move(item));
  }

  if (const Json* bands = reader.Get("bands"); bands != nullptr) {
    if (!bands->is_array())
      return Invalid(reader.Path("bands"), "must be an array");
    for (size_t i = 0; i < bands->size(); ++i) {
      ObjectReader band_reader((*bands)[i],
                               absl::StrCat(reader.Path("bands"), "[", i, "]"));
      RETURN_IF_ERROR(band_reader.CheckIsObject());
      ScoreBand band;
      RETURN_IF_ERROR(band_reader.Int("min", true, &band.min_score));
      RETURN_IF_ERROR(band_reader.Int("max", true, &band.max_score));
      RETURN_IF_ERROR(band_reader.String("code", true, &band.code));
      RETURN_IF_ERROR(
          band_reader.String("display_name", true, &band.display_name));
      RETURN_IF_ERROR(band_reader.CheckNoUnknownKeys());
      in.bands.push_back(std::move(band));
    }
  }

  if (const Json* rules = reader.Get("safety_rules"); rules != nullptr) {
    if (!rules->is_array()) {
      return Invalid(reader.Path("safety_rules"), "must be an array");
    }
    for (size_t i = 0; i < rules->size(); ++i) {
      const Json& name = (*rules)[i];
      const std::string path =
          absl::StrCat(reader.Path("safety_rules"), "[", i, "]");
      if (!name.is_string()) return Invalid(path, "must be a string");
      auto flag = ParseResponseFlag(name.get<std::string>());
      if (!flag) return Invalid(path, "unknown safety rule");
      in.safety_rules.push_back(*flag);
    }
  }
  RETURN_IF_ERROR(reader.CheckNoUnknownKeys());
  RETURN_IF_ERROR(ValidateInstrument(in));
  return in;
}

}  // namespace careseal::followup
