// Tests include the header under test first: it must be self-contained.
#include "thingsync/api/bindings.hpp"

#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

using thingsync::api::binding_body;
using thingsync::core::DeviceId;
using thingsync::core::Secret;

namespace {

const DeviceId& device() {
  static const DeviceId d = *DeviceId::parse("imei:350266800610993");
  return d;
}

std::string as_nlohmann_writes_it(const std::string& password) {
  return nlohmann::json{{"deviceId", device().canonical()}, {"password", password}}.dump();
}

}  // namespace

TEST_CASE("a binding body is the JSON nlohmann would write, byte for byte", "[api][bindings]") {
  for (const std::string& pw : {
           std::string("Correct-Horse-Battery-9-Staple"),
           std::string("Quote\"Back\\slash/Solidus-Pass-123"),
           std::string("Tab\tNewline\nReturn\rFeed\fBack\b-Pass-1"),
           std::string("Ctl\x01\x1f-and-DEL\x7f-Pass-Word-12"),
           std::string("Unicode-P\xc3\xa4ss-\xe2\x82\xac-\xf0\x9d\x84\x9e-Abcdefgh-123!"),
           std::string("Nul\0inside-Password-Abc-123", 27),
       }) {
    INFO(as_nlohmann_writes_it(pw));
    const auto body = binding_body(device(), Secret(pw));
    CHECK(body == as_nlohmann_writes_it(pw));
    CHECK(nlohmann::json::parse(body)["password"] == pw);
  }
}

TEST_CASE("a password that is not UTF-8 is refused as nlohmann refuses it, without its bytes",
          "[api][bindings]") {
  for (const std::string& bad : {
           std::string("Lone-continuation-\x80-Pass-123"),
           std::string("Overlong-slash-\xc0\xaf-Pass-123"),
           std::string("Overlong-3-byte-\xe0\x80\xaf-Pass-123"),
           std::string("Surrogate-\xed\xa0\x80-Pass-123"),
           std::string("Past-U+10FFFF-\xf4\x90\x80\x80-Pass-123"),
           std::string("Latin-1-P\xe4ss-Word-Abc-123"),
           std::string("Cut-short-at-the-end-\xe2\x82"),
       }) {
    INFO(bad.size());
    CHECK_THROWS_AS(as_nlohmann_writes_it(bad), nlohmann::json::type_error);
    try {
      binding_body(device(), Secret(bad));
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()) == "the password of imei:350266800610993 is not UTF-8 text");
    }
  }
}
