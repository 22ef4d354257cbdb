#include "thingsync/api/decode.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <tuple>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "fail.hpp"
#include "json_text.hpp"
#include "thingsync/core/time.hpp"

namespace thingsync::api {

ApiError protocol_error(std::string title, std::string detail) {
  return make_error(ErrorKind::kProtocol, std::move(title), std::move(detail));
}

namespace {

using nlohmann::json;

// One member of a binding as the decoder saw it: only string values are kept, as a view into
// the body when the text is there as is, else (nlohmann unescaped it) as a copy.
struct Field {
  enum class Kind : std::uint8_t { kAbsent, kNull, kString, kOther };
  Kind kind = Kind::kAbsent;
  bool copied = false;
  std::string_view view;
  std::string copy;

  std::string_view text() const { return copied ? std::string_view(copy) : view; }
  void set(Kind k, std::string_view text, bool in_body) {
    kind = k;
    copied = !in_body;
    if (in_body) {
      view = text;
    } else {
      copy.assign(text);
    }
  }
};

// One element of a page's items array (or the one binding of a GET/POST/PUT answer).
struct RawBinding {
  bool object = false;
  Field id;
  Field device;
  Field created;
  Field modified;
  Field modified_by;
};

// A SAX handler for nlohmann's parser: the document is checked exactly as json::parse checks
// it, but only the members a binding or a page needs are kept, without building a DOM (a
// page of 1,000 bindings would be tens of thousands of allocations). Duplicate keys: the last
// one wins, as in the DOM.
class Decoder {
 public:
  using number_integer_t = json::number_integer_t;
  using number_unsigned_t = json::number_unsigned_t;
  using number_float_t = json::number_float_t;
  using string_t = json::string_t;
  using binary_t = json::binary_t;

  /// page: a PageOfMqttBindings ({"items":[binding...],"next":…}); otherwise one binding.
  explicit Decoder(bool page) : page_(page), item_depth_(page ? 3 : 1) {}

  // nlohmann's SAX interface.
  bool null() { return value(Field::Kind::kNull, {}, Shape::kScalar); }
  bool boolean(bool) { return value(Field::Kind::kOther, {}, Shape::kScalar); }
  bool number_integer(number_integer_t) { return value(Field::Kind::kOther, {}, Shape::kScalar); }
  bool number_unsigned(number_unsigned_t) { return value(Field::Kind::kOther, {}, Shape::kScalar); }
  bool number_float(number_float_t, const string_t&) {
    return value(Field::Kind::kOther, {}, Shape::kScalar);
  }
  bool string(string_t& s) { return value(Field::Kind::kString, s, Shape::kScalar); }
  bool binary(binary_t&) { return value(Field::Kind::kOther, {}, Shape::kScalar); }
  bool start_object(std::size_t) { return value(Field::Kind::kOther, {}, Shape::kObject); }
  bool start_array(std::size_t) { return value(Field::Kind::kOther, {}, Shape::kArray); }
  bool end_object() { return end(); }
  bool end_array() { return end(); }
  bool key(string_t& k) { return key_text(k); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

  /// A string that stands in the body as is (scan_plain): kept as a view, not copied.
  bool string_in_body(std::string_view s) {
    in_body_ = true;
    value(Field::Kind::kString, s, Shape::kScalar);
    in_body_ = false;
    return true;
  }
  bool key_text(std::string_view k) {
    target_ = nullptr;
    want_items_ = false;
    if (page_ && depth_ == 1) {
      if (k == "items") {
        want_items_ = true;
      } else if (k == "next") {
        target_ = &next_;
      }
    } else if (RawBinding* current = depth_ == item_depth_ ? open_binding() : nullptr) {
      auto& b = *current;
      if (k == "id") {
        target_ = &b.id;
      } else if (k == "deviceId") {
        target_ = &b.device;
      } else if (k == "createdAt") {
        target_ = &b.created;
      } else if (k == "modifiedAt") {
        target_ = &b.modified;
      } else if (k == "modifiedBy") {
        target_ = &b.modified_by;
      }
    }
    return true;
  }

  void reset() { *this = Decoder(page_); }
  bool top_object() const { return top_object_; }
  bool items_array() const { return items_array_; }
  std::vector<RawBinding>& items() { return items_; }
  RawBinding& binding() { return single_; }
  const Field& next() const { return next_; }

 private:
  enum class Shape : std::uint8_t { kScalar, kObject, kArray };

  bool value(Field::Kind kind, std::string_view text, Shape shape) {
    if (depth_ == 0) {
      top_object_ = shape == Shape::kObject;
      single_.object = top_object_;
    } else if (target_) {
      target_->set(kind, text, in_body_);
      target_ = nullptr;
    } else if (want_items_ && depth_ == 1) {
      want_items_ = false;
      items_.clear();
      items_array_ = shape == Shape::kArray;
      in_items_ = items_array_;
    } else if (in_items_ && depth_ == 2) {
      items_.push_back(RawBinding{shape == Shape::kObject, {}, {}, {}, {}, {}});
    }
    if (shape != Shape::kScalar) ++depth_;
    return true;
  }
  // The binding whose members come next: the page's last item, or the document itself.
  RawBinding* open_binding() {
    if (!page_) return &single_;
    return in_items_ && !items_.empty() ? &items_.back() : nullptr;
  }
  bool end() {
    if (in_items_ && depth_ == 2) in_items_ = false;  // the items array closes
    --depth_;
    target_ = nullptr;
    want_items_ = false;
    return true;
  }

  bool page_;
  int item_depth_;
  int depth_ = 0;
  Field* target_ = nullptr;  // where the value after the current key goes
  bool want_items_ = false;  // the value after the current key is the items member
  bool in_items_ = false;    // inside the (last) items array
  bool top_object_ = false;
  bool items_array_ = false;
  bool in_body_ = false;     // the string value at hand is a view into the body
  std::vector<RawBinding> items_;  // a page's items
  RawBinding single_;              // the binding of a GET/POST/PUT answer
  Field next_;
};

// nullopt: the item's deviceId does not parse (the caller skips it); error: unusable JSON.
core::Result<std::optional<core::RemoteBinding>, ApiError> binding_from(RawBinding& raw) {
  using Kind = Field::Kind;
  if (!raw.object) return detail::fail(protocol_error("binding is not a JSON object"));
  if (raw.id.kind != Kind::kString || raw.id.text().empty()) {
    return detail::fail(protocol_error("binding has no id"));
  }
  if (raw.device.kind != Kind::kString) {
    return detail::fail(protocol_error("binding has no deviceId", std::string(raw.id.text())));
  }
  auto device = core::DeviceId::parse(raw.device.text());
  if (!device) return std::optional<core::RemoteBinding>();
  core::RemoteBinding b{std::string(raw.id.text()), std::move(*device)};
  for (char& c : b.id) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + ('a' - 'A'));
  }
  for (auto [key, field, out] : {std::tuple{"createdAt", &raw.created, &b.created_at_ms},
                                 std::tuple{"modifiedAt", &raw.modified, &b.modified_at_ms}}) {
    if (field->kind == Kind::kAbsent || field->kind == Kind::kNull) continue;
    auto ms = field->kind == Kind::kString ? core::parse_iso8601_ms(field->text()) : std::nullopt;
    if (!ms) {
      return detail::fail(protocol_error(std::string("binding has a malformed ") + key, b.id));
    }
    *out = *ms;
  }
  // Only to say who changed a binding outside thingsync: anything but a string is ignored.
  if (raw.modified_by.kind == Kind::kString) b.modified_by.assign(raw.modified_by.text());
  return std::optional<core::RemoteBinding>(std::move(b));
}

// The first byte in [p, end) that a plain string cannot hold as is: '"', '\\', a control
// character or a non-ASCII byte. Eight bytes at a time (SWAR): a GET's body is mostly strings.
const char* plain_run_end(const char* p, const char* const end) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHighs = 0x8080808080808080;
  // Nonzero when some byte of v is below n (n <= 128); exact as to whether one is.
  auto below = [](std::uint64_t v, std::uint64_t n) { return (v - kOnes * n) & ~v & kHighs; };
  while (end - p >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    if ((w & kHighs) | below(w, 0x20) | below(w ^ (kOnes * '"'), 1) | below(w ^ (kOnes * '\\'), 1)) {
      break;  // the byte loop below finds which
    }
    p += 8;
  }
  for (; p < end; ++p) {
    const auto u = static_cast<unsigned char>(*p);
    if (u == '"' || u == '\\' || u < 0x20 || u >= 0x80) break;
  }
  return p;
}

// The common case without nlohmann's lexer (a third of a GET's client time): a strict scanner
// for plain documents -- ASCII strings without escapes, integers of up to 18 digits, literals --
// that feeds the decoder the events nlohmann's parser would. Anything else, invalid JSON
// included, makes it give up (false), and decode() lets nlohmann judge the whole body instead.
bool scan_plain(std::string_view body, Decoder& d) {
  const char* p = body.data();
  const char* const end = p + body.size();
  constexpr int kMaxDepth = 32;
  std::array<bool, kMaxDepth> in_object{};  // the open containers: object or array
  int depth = 0;
  enum class Next : std::uint8_t { kValue, kKey, kAfterValue };
  Next next = Next::kValue;
  auto skip_ws = [&] {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  };
  std::string_view text;  // the last key or string scanned
  auto scan_string = [&] {  // at the opening quote
    const char* const first = ++p;
    const char* const stop = plain_run_end(first, end);
    if (stop == end || *stop != '"') return false;  // an escape, a control or non-ASCII byte
    text = std::string_view(first, static_cast<std::size_t>(stop - first));
    p = stop + 1;
    return true;
  };
  auto literal = [&](std::string_view word) {
    if (std::string_view(p, static_cast<std::size_t>(end - p)).substr(0, word.size()) != word) {
      return false;
    }
    p += word.size();
    return true;
  };
  for (;;) {
    skip_ws();
    if (next == Next::kKey) {
      if (p == end || *p != '"' || !scan_string()) return false;
      d.key_text(text);
      skip_ws();
      if (p == end || *p != ':') return false;
      ++p;
      next = Next::kValue;
      continue;
    }
    if (next == Next::kAfterValue) {
      if (depth == 0) return p == end;
      if (p == end) return false;
      const bool object = in_object[static_cast<std::size_t>(depth - 1)];
      if (*p == ',') {
        ++p;
        next = object ? Next::kKey : Next::kValue;
      } else if (*p == (object ? '}' : ']')) {
        ++p;
        --depth;
        if (object) {
          d.end_object();
        } else {
          d.end_array();
        }
      } else {
        return false;
      }
      continue;
    }
    if (p == end) return false;
    next = Next::kAfterValue;
    switch (*p) {
      case '{':
      case '[': {
        const bool object = *p == '{';
        ++p;
        if (object) {
          d.start_object(std::size_t(-1));
        } else {
          d.start_array(std::size_t(-1));
        }
        skip_ws();
        if (p < end && *p == (object ? '}' : ']')) {
          ++p;
          if (object) {
            d.end_object();
          } else {
            d.end_array();
          }
          break;
        }
        if (depth == kMaxDepth) return false;
        in_object[static_cast<std::size_t>(depth++)] = object;
        next = object ? Next::kKey : Next::kValue;
        break;
      }
      case '"':
        if (!scan_string()) return false;
        d.string_in_body(text);
        break;
      case 't':
        if (!literal("true")) return false;
        d.boolean(true);
        break;
      case 'f':
        if (!literal("false")) return false;
        d.boolean(false);
        break;
      case 'n':
        if (!literal("null")) return false;
        d.null();
        break;
      default: {
        // An integer: -?(0|[1-9][0-9]*), short enough to need no overflow handling.
        if (*p == '-') ++p;
        const char* const digits = p;
        while (p < end && *p >= '0' && *p <= '9') ++p;
        const auto n = p - digits;
        if (n == 0 || n > 18 || (n > 1 && *digits == '0')) return false;
        if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return false;
        d.number_integer(0);  // the decoder keeps no numbers
        break;
      }
    }
  }
}

// Runs the decoder over the whole body; false when the body is not valid JSON.
bool decode(std::string_view body, Decoder& decoder) {
  if (scan_plain(body, decoder)) return true;
  decoder.reset();
  if (detail::has_nul(body)) return false;  // alone or inside a page
  return json::sax_parse(body, &decoder, json::input_format_t::json, true);
}

}  // namespace

core::Result<Page, ApiError> parse_page(std::string_view body) {
  Decoder d(true);
  if (!decode(body, d)) {
    return detail::fail(protocol_error("page is not valid JSON",
                                       std::to_string(body.size()) + " bytes"));
  }
  if (!d.top_object()) return detail::fail(protocol_error("page is not a JSON object"));
  if (!d.items_array()) return detail::fail(protocol_error("page has no items array"));
  Page page;
  page.items.reserve(d.items().size());
  for (auto& item : d.items()) {
    auto b = binding_from(item);
    if (!b) return detail::fail(b.error());
    if (*b) {
      page.items.push_back(std::move(**b));
    } else {
      page.skipped.emplace_back(item.id.text());
    }
  }
  switch (d.next().kind) {
    case Field::Kind::kAbsent:
    case Field::Kind::kNull:
      break;
    case Field::Kind::kString:
      if (!d.next().text().empty()) page.next = std::string(d.next().text());
      break;
    case Field::Kind::kOther:
      return detail::fail(protocol_error("page has a non-string next link"));
  }
  return page;
}

core::Result<core::RemoteBinding, ApiError> parse_binding(std::string_view body) {
  Decoder d(false);
  if (!decode(body, d)) return detail::fail(protocol_error("binding is not valid JSON"));
  auto b = binding_from(d.binding());
  if (!b) return detail::fail(b.error());
  if (!*b) return detail::fail(protocol_error("binding has an unknown deviceId format"));
  return std::move(**b);
}

}  // namespace thingsync::api
