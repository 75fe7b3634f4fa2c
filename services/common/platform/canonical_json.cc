#include "services/common/platform/canonical_json.h"

#include "absl/strings/str_cat.h"
#include "services/common/platform/text.h"
#include "services/common/status.h"

namespace careseal {

absl::StatusOr<std::string> CanonicalJson(const Json& value) {
  try {
    return value.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    return Internal("NOT_UTF8", "a value to be signed is not valid UTF-8");
  }
}

namespace {

// Appends `s` as a JSON string the way CanonicalJson() writes one (minimal
// escaping: quote, backslash, and control characters; \b \f \n \r \t by
// name, the others as \u00xx). False if `s` is not valid UTF-8.
bool AppendJsonString(std::string& out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  bool ascii = true;
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80) {
      ascii = false;
      out.push_back(ch);
      continue;
    }
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
  return ascii || CodePoints(s) >= 0;
}

}  // namespace

void CanonicalStringObject::Key(absl::string_view key) {
  if (out_.size() > 1) {
    if (key <= last_key_) bad_order_ = true;
    out_.push_back(',');
  }
  last_key_.assign(key.data(), key.size());
  if (!AppendJsonString(out_, key)) bad_utf8_ = true;
  out_.push_back(':');
}

void CanonicalStringObject::Add(absl::string_view key,
                                absl::string_view value) {
  Key(key);
  if (!AppendJsonString(out_, value)) bad_utf8_ = true;
}

void CanonicalStringObject::AddInt(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&out_, value);
}

void CanonicalStringObject::AddStrings(absl::string_view key,
                                       const std::vector<std::string>& values) {
  Key(key);
  out_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out_.push_back(',');
    if (!AppendJsonString(out_, values[i])) bad_utf8_ = true;
  }
  out_.push_back(']');
}

absl::StatusOr<std::string> CanonicalStringObject::Finish() && {
  if (bad_utf8_) {
    return Internal("NOT_UTF8", "a value to be signed is not valid UTF-8");
  }
  if (bad_order_) {
    return Internal("KEY_ORDER", "canonical object keys added out of order");
  }
  out_.push_back('}');
  return std::move(out_);
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

}  // namespace careseal
