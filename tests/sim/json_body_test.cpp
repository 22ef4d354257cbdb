// The simulator reads binding bodies with a hand-written parser (src/sim/json_body.cpp). It
// must accept and read exactly what nlohmann::ordered_json::parse(body, nullptr, false) did
// before (except for raw NUL bytes, see by_nlohmann): these tests compare the two on chosen and
// on generated inputs.
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "json_body.hpp"

using thingsync::sim::BindingBody;
using thingsync::sim::JsonMember;
using thingsync::sim::JsonType;

namespace {

constexpr const char* kMembers[] = {"deviceId",       "password",   "clientId",
                                    "allowDuplicate", "modifiedBy", "modifiedAt"};

// What the simulator used to see, in one comparable line. One difference on purpose: nlohmann
// ends the input at a NUL byte (as in a C string) and so accepted "{...}\0junk"; JSON has no
// raw NUL, and the simulator, like a strict server, calls such a body invalid.
std::string by_nlohmann(std::string_view body) {
  if (body.find('\0') != std::string_view::npos) return "invalid";
  const auto j = nlohmann::ordered_json::parse(body, nullptr, false);
  if (j.is_discarded()) return "invalid";
  if (!j.is_object()) return "not an object";
  std::string out = "object";
  for (const char* name : kMembers) {
    out.append(" ").append(name).append("=");
    const auto it = j.find(name);
    if (it == j.end()) {
      out += "absent";
    } else if (it->is_string()) {
      out += "string:" + it->get<std::string>();
    } else if (it->is_boolean()) {
      out += it->get<bool>() ? "true" : "false";
    } else if (it->is_null()) {
      out += "null";
    } else if (it->is_number()) {
      out += "number";
    } else if (it->is_array()) {
      out += "array";
    } else {
      out += "object";
    }
  }
  return out;
}

std::string describe(const JsonMember& m) {
  switch (m.type) {
    case JsonType::kAbsent: return "absent";
    case JsonType::kString: return "string:" + std::string(m.text);
    case JsonType::kBoolean: return m.boolean ? "true" : "false";
    case JsonType::kNull: return "null";
    case JsonType::kNumber: return "number";
    case JsonType::kArray: return "array";
    case JsonType::kObject: return "object";
  }
  return "?";
}

std::string by_sim(BindingBody& parser, std::string_view body) {
  switch (parser.parse(body)) {
    case BindingBody::Status::kInvalid: return "invalid";
    case BindingBody::Status::kNotObject: return "not an object";
    case BindingBody::Status::kObject: break;
  }
  std::string out = "object";
  const JsonMember* members[] = {&parser.device_id,       &parser.password,
                                 &parser.client_id,       &parser.allow_duplicate,
                                 &parser.modified_by,     &parser.modified_at};
  static_assert(std::size(members) == std::size(kMembers));
  for (std::size_t i = 0; i < std::size(members); ++i) {
    out.append(" ").append(kMembers[i]).append("=") += describe(*members[i]);
  }
  return out;
}

// Printable form of a body for failure messages.
std::string shown(std::string_view body) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : body) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      out.append("\\x").push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::vector<std::string> chosen_bodies() {
  using namespace std::string_literals;
  return {
      // plain, and the members in every type
      R"({"deviceId":"imei:350266800610993","password":"Correct-Horse-Battery-9-Staple"})",
      R"({"deviceId":"imei:350266800610993"})",
      R"({"password":"x"})",
      R"({"deviceId":350266800610993})",
      R"({"deviceId":null,"password":true,"clientId":[1,2],"allowDuplicate":{"a":1}})",
      R"({"allowDuplicate":true,"clientId":"3F1C2A9E-6B1D-4C2E-9A57-0D1E2F3A4B5C"})",
      R"({"allowDuplicate":false})", R"({"allowDuplicate":"true"})",
      R"({"deviceId":-0.5e-3,"password":1E+2,"clientId":0,"allowDuplicate":-0})",
      // unknown, read-only and nested members; a nested deviceId does not count
      R"({"id":"x","username":"u","createdAt":"2025-01-01T00:00:00Z","extra":{"deviceId":"imei:1"}})",
      R"({"modifiedBy":"principal/x","modifiedAt":"2025-01-01T00:00:00Z","deviceId":"imei:1"})",
      R"({"modifiedBy":null,"modifiedAt":1735689600000,"modifiedBy":"a\u00e9"})",
      R"({"x":[{"deviceId":"a"},["deviceId"]],"deviceId":"imei:350266800610993"})",
      // repeated keys: the last one counts, whatever the types
      R"({"deviceId":"a","deviceId":"imei:350266800610993"})",
      R"({"deviceId":1,"deviceId":"b"})", R"({"deviceId":"b","deviceId":1})",
      R"({"password":"p","password":null})", R"({"deviceId":"a","x":1,"deviceId":{"y":2}})",
      // escapes in keys and values
      R"({"device\u0049d":"imei:350266800610993"})", R"({"\u0064eviceId":"x"})",
      R"({"deviceId":"a\"b\\c\/d\be\ff\ng\rh\ti"})", R"({"deviceId":"\u00e9\u20AC\ud83d\ude00"})",
      R"({"deviceId":"\u0000"})", R"({"password":"ab\u0000cd"})",
      R"({"deviceId":"\ud83d"})", R"({"deviceId":"\ude00"})", R"({"deviceId":"\ud83d\u0041"})",
      R"({"deviceId":"\ud83dx"})", R"({"deviceId":"\u12g4"})", R"({"deviceId":"\u12"})",
      R"({"deviceId":"\x41"})", R"({"deviceId":"\a"})", R"({"deviceId":"\'"})",
      R"({"deviceId":"abc\"})", R"({"deviceId":"\)",
      // raw UTF-8, valid and not
      "{\"deviceId\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"}",
      "{\"deviceId\":\"\xc0\x80\"}", "{\"deviceId\":\"\xc1\xbf\"}", "{\"deviceId\":\"\xe0\x80\x80\"}",
      "{\"deviceId\":\"\xe0\x9f\xbf\"}", "{\"deviceId\":\"\xed\xa0\x80\"}",
      "{\"deviceId\":\"\xed\x9f\xbf\"}", "{\"deviceId\":\"\xf0\x8f\xbf\xbf\"}",
      "{\"deviceId\":\"\xf4\x90\x80\x80\"}", "{\"deviceId\":\"\xf5\x80\x80\x80\"}",
      "{\"deviceId\":\"\xff\"}", "{\"deviceId\":\"\x80\"}", "{\"deviceId\":\"\xc3\"}",
      "{\"deviceId\":\"\xe2\x82\"}", "{\"deviceId\":\"\xc3\x28\"}", "{\"deviceId\":\"\xe2\x28\xa1\"}",
      "{\"dev\xc3\xa9\":1}", "{\"deviceId\":\"\x7f\"}",
      // raw control characters and NUL
      "{\"deviceId\":\"a\nb\"}", "{\"deviceId\":\"a\tb\"}", "{\"deviceId\":\"a\x1f\"}",
      "{\"deviceId\":\"a\0b\"}"s, "{\"deviceId\":\"x\"}\0"s, "{\"deviceId\":\"x\"}\0garbage"s,
      "{\"deviceId\":\"x\"} \0 }"s, "\0{}"s, "{\0}"s, "{\"a\":\0}"s, "[1,\0]"s, "\0"s,
      // byte order marks
      "\xef\xbb\xbf{\"deviceId\":\"x\"}", "\xef\xbb\xbf", "\xef\xbb{}", "\xef{}", "\xef\xbb\xbf\xef\xbb\xbf{}",
      " \xef\xbb\xbf{}",
      // whitespace
      " \t\r\n{ \t\r\n\"deviceId\" \t\r\n: \t\r\n\"x\" \t\r\n} \t\r\n", "{\"deviceId\":\"x\"}\f",
      "\v{}", "{}\x0b",
      // numbers
      R"({"a":01})", R"({"a":-})", R"({"a":-01})", R"({"a":1.})", R"({"a":.5})", R"({"a":1e})",
      R"({"a":1e+})", R"({"a":1E-2})", R"({"a":+1})", R"({"a":1e999})", R"({"a":-1e999})",
      R"({"a":1e-999})", R"({"a":1.7976931348623157e308})", R"({"a":1.8e308})",
      R"({"a":123456789012345678901234567890})", R"({"a":-9223372036854775809})",
      R"({"a":18446744073709551616})", "{\"a\":1" + std::string(400, '0') + "}",
      "{\"a\":1" + std::string(307, '0') + "}", "{\"a\":1" + std::string(308, '0') + "}",
      "{\"a\":0." + std::string(400, '0') + "1}", R"({"a":0x10})", R"({"a":NaN})",
      R"({"a":Infinity})", R"({"a":1_000})",
      // literals
      R"({"a":tru})", R"({"a":truee})", R"({"a":True})", R"({"a":nul})", R"({"a":fals})",
      R"({"a":null1})",
      // structure
      "", " ", "{", "}", "{}", "[]", "[", "]", "{}}", "{}{}", "{} {}", "[]]", R"({"a"})",
      R"({"a":})", R"({"a" 1})", R"({"a":1,})", R"({,"a":1})", R"({"a":1 "b":2})",
      R"({"a":1,,"b":2})", R"({a:1})", R"({'a':1})", R"({"a":'x'})", R"({1:2})", R"({null:1})",
      R"([1,2,])", R"([,1])", R"([1 2])", R"({"a":[1,{"b":[]}],"c":{}})", R"({"a":{"b":{"c":{}}}})",
      R"({"a":[}})", R"({"a":{]})", R"({"a":[1}])", "\"deviceId\"", "42", "-1.5", "true",
      "false", "null", R"(["imei:350266800610993"])", "{\"a\":1}/* c */", "{\"a\":1}// c",
      "/* c */{}", "{\"a\":\"unterminated}",
      // deep nesting (nlohmann copies a DOM recursively: 1,000 levels keep it within the stack
      // of a sanitizer build at -O0; the simulator's own limit is tested below)
      "{\"a\":" + std::string(1000, '[') + std::string(1000, ']') + ",\"deviceId\":\"d\"}",
      "{\"a\":" + std::string(1000, '[') + std::string(999, ']') + "}",
      std::string(1000, '[') + std::string(1000, ']'),
  };
}

// Mutations of valid bodies: a step that nlohmann and the simulator must judge alike.
const std::vector<std::string>& fragments() {
  using namespace std::string_literals;
  static const std::vector<std::string> f = {
      "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u", "\\ud83d", "\\ude00", "\\u0000", "\\n",
      "\\x", "0", "1", "-", "e", "E", "+", ".", "t", "true", "false", "null", "\0"s, "\xef",
      "\xbb", "\xbf", "\xef\xbb\xbf", "\xc3", "\xa9", "\xc3\xa9", "\xed\xa0\x80", "\xf4\x90",
      "\xff", "\x80", " ", "\n", "\t", "\x01", "deviceId", "\"deviceId\":", "\"password\":",
      "\"clientId\":", "\"allowDuplicate\":", "\"modifiedBy\":", "\"modifiedAt\":", "\"x\"",
      "[]", "{}", "1e999", "\x7f",
  };
  return f;
}

std::string mutate(std::string s, std::mt19937& rng) {
  const auto& frags = fragments();
  const int steps = 1 + static_cast<int>(rng() % 3);
  for (int k = 0; k < steps; ++k) {
    const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0: s.insert(pos, frags[rng() % frags.size()]); break;
      case 1:
        if (pos < s.size()) s.erase(pos, 1 + rng() % 3);
        break;
      case 2:
        if (pos < s.size()) s[pos] = frags[rng() % frags.size()].front();
        break;
      default:
        if (pos < s.size()) s[pos] = static_cast<char>(rng() % 256);
        break;
    }
  }
  return s;
}

}  // namespace

TEST_CASE("the body reader agrees with nlohmann::json on chosen bodies", "[sim][json]") {
  BindingBody parser;
  for (const auto& body : chosen_bodies()) {
    INFO("body: " << shown(body));
    CHECK(by_sim(parser, body) == by_nlohmann(body));
  }
}

TEST_CASE("the body reader keeps no recursion: a million levels of nesting read like one",
          "[sim][json]") {
  BindingBody parser;
  const auto nested = [](std::size_t depth, std::size_t closed) {
    return "{\"a\":" + std::string(depth, '[') + std::string(closed, ']') + ",\"deviceId\":\"d\"}";
  };
  CHECK(by_sim(parser, nested(1'000'000, 1'000'000)) == by_sim(parser, nested(1, 1)));
  CHECK(by_sim(parser, nested(1'000'000, 999'999)) == "invalid");
}

TEST_CASE("the body reader agrees with nlohmann::json on mutated bodies", "[sim][json]") {
  BindingBody parser;
  std::mt19937 rng(20250901);
  const auto seeds = chosen_bodies();
  std::size_t agreed = 0, valid = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string body = seeds[rng() % seeds.size()];
    body = mutate(std::move(body), rng);
    const std::string want = by_nlohmann(body);
    const std::string got = by_sim(parser, body);
    if (want != "invalid") ++valid;
    if (got == want) {
      ++agreed;
      continue;
    }
    INFO("body: " << shown(body));
    REQUIRE(got == want);
  }
  CHECK(agreed == 200000);
  CHECK(valid > 10000);  // the mutations do not only make garbage
}

TEST_CASE("the body reader gives escaped strings their decoded value", "[sim][json]") {
  BindingBody parser;
  REQUIRE(parser.parse(R"({"deviceId":"imei:\u0033\u00350266800610993","password":"a\ud83d\ude00\n"})") ==
          BindingBody::Status::kObject);
  CHECK(parser.device_id.text == "imei:350266800610993");
  CHECK(parser.password.text == "a\xf0\x9f\x98\x80\n");
  // A later body reuses the buffers; the views follow.
  REQUIRE(parser.parse(R"({"deviceId":"imei:350266800610994"})") == BindingBody::Status::kObject);
  CHECK(parser.device_id.text == "imei:350266800610994");
  CHECK(parser.password.type == JsonType::kAbsent);
}
