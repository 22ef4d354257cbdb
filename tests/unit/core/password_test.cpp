#include "thingsync/core/password.hpp"

#include <cstdint>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using thingsync::core::DeviceId;
using thingsync::core::Fingerprint;
using thingsync::core::Fingerprinter;
using thingsync::core::from_hex;
using thingsync::core::password_policy_violation;
using thingsync::core::PasswordDeriver;
using thingsync::core::Secret;
using thingsync::core::to_hex;

namespace {

DeviceId id(std::string_view spelling) {
  auto parsed = DeviceId::parse(spelling);
  REQUIRE(parsed);
  return *parsed;
}

// A random valid spelling of a random device of any kind: short or URN form, any case.
std::string random_device_spelling(std::mt19937& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto digits = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>('0' + pick(10)));
    return s;
  };
  auto hex = [&](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back("0123456789abcdefABCDEF"[pick(22)]);
    return s;
  };
  auto uuid = [&] { return hex(8) + '-' + hex(4) + '-' + hex(4) + '-' + hex(4) + '-' + hex(12); };
  auto cased = [&](std::string s) {
    for (auto& c : s) {
      if (pick(2) == 0 && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
  };
  std::string kind, value;
  switch (pick(4)) {
    case 0: return uuid();
    case 1: kind = "imei"; value = digits(15 + pick(2)); break;
    case 2: kind = "deveui"; value = hex(16); break;
    default: kind = "dvnuuid"; value = uuid(); break;
  }
  switch (pick(3)) {
    case 0: return cased(kind) + ':' + value;
    case 1: return cased("urn:dev:" + kind + ':') + value;
    default: return cased("urn:dev:" + kind + ':') + value + ':';
  }
}

struct Vector {
  std::string key, device, password;
};

std::string strip_cell(std::string cell) {
  auto trim = [](std::string& s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
  };
  trim(cell);
  if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`') {
    cell = cell.substr(1, cell.size() - 2);
  }
  return cell;
}

// The first markdown table under the first heading that mentions "Test vectors".
std::vector<Vector> read_test_vectors(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::vector<Vector> out;
  std::string line;
  bool in_section = false, in_table = false;
  int table_line = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind('#', 0) == 0) {
      if (in_section) break;  // the next heading ends the section
      in_section = line.find("Test vectors") != std::string::npos;
      continue;
    }
    if (!in_section) continue;
    if (line.rfind('|', 0) != 0) {
      if (in_table) break;
      continue;
    }
    in_table = true;
    if (++table_line <= 2) continue;  // header and separator rows
    std::vector<std::string> cells;
    std::stringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) cells.push_back(strip_cell(cell));
    REQUIRE(cells.size() >= 3);
    out.push_back({cells[0], cells[1], cells[2]});
  }
  return out;
}

}  // namespace

TEST_CASE("the password policy names the first rule a password breaks", "[core][password]") {
  CHECK(password_policy_violation("Abcdefghijklmnopqrstuvw1-") == "");
  CHECK(password_policy_violation("G6sdt9{4R8QmORTPt%zW.*:yr@}vRLzc") == "");
  CHECK(password_policy_violation("Abcdefghijklmnopqrstuv1-") == "");  // exactly 24
  CHECK(password_policy_violation("Abcdefghijklmnopqrstu1-") ==
        "has 23 characters, at least 24 are required");
  CHECK(password_policy_violation("") == "has 0 characters, at least 24 are required");
  CHECK(password_policy_violation("ABCDEFGHIJKLMNOPQRSTUVWX1-") == "has no lower case letter");
  CHECK(password_policy_violation("abcdefghijklmnopqrstuvwx1-") == "has no upper case letter");
  CHECK(password_policy_violation("Abcdefghijklmnopqrstuvwxy-") == "has no digit");
  CHECK(password_policy_violation("Abcdefghijklmnopqrstuvwxy1") ==
        "has no special character (anything but a letter or digit)");
  CHECK(password_policy_violation("Abcdefghijklmnopqrstuvw1-\n") == "contains a control character");
  CHECK(password_policy_violation(std::string("Abcdefghijklmnopqrstuvw1-\0", 26)) ==
        "contains a control character");
}

TEST_CASE("the password policy counts characters, not UTF-8 bytes, and a space is special",
          "[core][password]") {
  // 20 ASCII + 3 two-byte letters = 23 characters in 26 bytes.
  CHECK(password_policy_violation("Abcdefghijklmnopqr1-\xC3\xA9\xC3\xA9\xC3\xA9") ==
        "has 23 characters, at least 24 are required");
  CHECK(password_policy_violation("Abcdefghijklmnopqrstuvw1 ") == "");
}

TEST_CASE("derived passwords of 100000 random devices are 32 characters and meet the policy",
          "[core][password]") {
  PasswordDeriver derive(Secret("a fleet key for the test"));
  std::mt19937 rng(20250901);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.";
  std::set<std::string> seen;
  std::size_t kinds[4] = {};
  for (int i = 0; i < 100'000; ++i) {
    const auto spelling = random_device_spelling(rng);
    const auto device = DeviceId::parse(spelling);
    INFO(spelling);
    REQUIRE(device);
    ++kinds[static_cast<int>(device->kind())];
    const Secret pw = derive.derive(*device);
    REQUIRE(pw.reveal().size() == 32);
    REQUIRE(password_policy_violation(pw.reveal()) == "");
    REQUIRE(pw.reveal().find_first_not_of(alphabet) == std::string::npos);
    seen.insert(device->canonical() + '\n' + pw.reveal());
  }
  for (auto n : kinds) CHECK(n > 20'000);
  // Same device, same password: the set holds one entry per distinct device.
  std::set<std::string> devices;
  for (const auto& s : seen) devices.insert(s.substr(0, s.find('\n')));
  CHECK(devices.size() == seen.size());
}

TEST_CASE("every spelling of a device derives the password of its canonical form",
          "[core][password]") {
  PasswordDeriver derive(Secret("fleet-key-2025"));
  const Secret expected = derive.derive(id("imei:350266800610993"));
  for (const char* s : {"IMEI:350266800610993", "urn:dev:imei:350266800610993",
                        "urn:dev:IMEI:350266800610993:", "Urn:Dev:Imei:350266800610993"}) {
    INFO(s);
    CHECK(derive.derive(id(s)) == expected);
  }
  CHECK(derive.derive(id("dvnuuid:ED8B73AC-F48F-4457-8CCC-9926CF28979F")) ==
        derive.derive(id("urn:dev:dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f:")));
  // A bare UUID and dvnuuid: with the same digits are different devices.
  CHECK_FALSE(derive.derive(id("ed8b73ac-f48f-4457-8ccc-9926cf28979f")) ==
              derive.derive(id("dvnuuid:ed8b73ac-f48f-4457-8ccc-9926cf28979f")));
}

TEST_CASE("different fleet keys derive different passwords for the same device",
          "[core][password]") {
  PasswordDeriver a(Secret("fleet-key-2025"));
  PasswordDeriver b(Secret("fleet-key-2026"));
  PasswordDeriver c(Secret("fleet-key-2025\n"));  // the loader strips the newline, not us
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    const auto device = id(random_device_spelling(rng));
    const auto pa = a.derive(device);
    CHECK_FALSE(pa == b.derive(device));
    CHECK_FALSE(pa == c.derive(device));
  }
}

TEST_CASE("an empty fleet key is refused", "[core][password]") {
  CHECK_THROWS_AS(PasswordDeriver(Secret("")), std::invalid_argument);
}

TEST_CASE("the test vectors in the derivation document match the implementation",
          "[core][password]") {
  const auto vectors = read_test_vectors(THINGSYNC_DERIVATION_DOC);
  REQUIRE(vectors.size() >= 5);
  for (const auto& v : vectors) {
    INFO("key=" << v.key << " device=" << v.device);
    const auto device = id(v.device);
    CHECK(device.canonical() == v.device);  // the table lists canonical forms
    PasswordDeriver derive{Secret(v.key)};
    CHECK(derive.derive(device).reveal() == v.password);
  }
}

TEST_CASE("a fingerprint depends on salt, device and password and on nothing else",
          "[core][password]") {
  Fingerprinter fp("salt-1");
  const auto device = id("imei:350266800610993");
  const Secret pw("Abcdefghijklmnopqrstuvw1-");
  const Fingerprint base = fp(device, pw);

  CHECK(fp(device, pw) == base);
  CHECK(fp(id("urn:dev:IMEI:350266800610993:"), pw) == base);
  Fingerprinter same_salt("salt-1");
  CHECK(same_salt(device, pw) == base);

  CHECK_FALSE(fp(id("imei:350266800610994"), pw) == base);
  CHECK_FALSE(fp(device, Secret("Abcdefghijklmnopqrstuvw1.")) == base);
  Fingerprinter other_salt("salt-2");
  CHECK_FALSE(other_salt(device, pw) == base);
  Fingerprinter empty_salt("");
  CHECK_FALSE(empty_salt(device, pw) == base);
  CHECK(empty_salt(device, pw) == empty_salt(device, pw));
  // The 0x00 separator keeps "device||password" splits apart.
  CHECK_FALSE(fp(id("imei:3502668006109931"), Secret("23456789012345678901234Aa-")) ==
              fp(id("imei:350266800610993"), Secret("123456789012345678901234Aa-")));
}

TEST_CASE("fingerprints round-trip through 16 lower case hex digits", "[core][password]") {
  Fingerprinter fp("salt");
  const Fingerprint f = fp(id("deveui:ea8fa35e2cf3489f"), Secret("Abcdefghijklmnopqrstuvw1-"));
  const std::string hex = to_hex(f);
  CHECK(hex.size() == 16);
  CHECK(hex.find_first_not_of("0123456789abcdef") == std::string::npos);
  Fingerprint back{};
  REQUIRE(from_hex(hex, back));
  CHECK(back == f);

  Fingerprint known{};
  for (std::size_t i = 0; i < known.size(); ++i) known[i] = static_cast<std::uint8_t>(i * 17);
  CHECK(to_hex(known) == "0011223344556677");
  Fingerprint upper{};
  REQUIRE(from_hex("00112233445566778899AABBCCDDEEFF", upper));  // version 1's 32 digits
  CHECK(upper == known);
  Fingerprint lower{};
  REQUIRE(from_hex("0011223344556677", lower));
  CHECK(lower == known);
}

TEST_CASE("a fingerprint is the first 8 bytes of HMAC-SHA256(salt, device, 0, password)",
          "[core][password]") {
  // Computed apart from thingsync: printf 'imei:350266800610993\0Abcdefghijklmnopqrstuvw1-' |
  //   openssl dgst -sha256 -mac HMAC -macopt key:Jefe
  // Its first 16 bytes are what state file version 1 stored; a fingerprint is the first 8.
  constexpr std::string_view kJefeMac =
      "aa177191191e2784ac27894483246a761a721e3934a5244aabdefa6191aad056";
  Fingerprinter fp("Jefe");
  const Fingerprint f = fp(id("imei:350266800610993"), Secret("Abcdefghijklmnopqrstuvw1-"));
  CHECK(to_hex(f) == kJefeMac.substr(0, 16));
  Fingerprint v1{};
  REQUIRE(from_hex(kJefeMac.substr(0, 32), v1));
  CHECK(v1 == f);
}

TEST_CASE("malformed fingerprint hex is rejected and leaves the output alone",
          "[core][password]") {
  Fingerprint out{};
  out.fill(0x5A);
  const Fingerprint before = out;
  for (const char* bad : {"", "00", "001122334455667", "00112233445566778",
                          "00112233445566778899aabbccddeef", "00112233445566778899aabbccddeeff0",
                          "00112233445566778899aabbccddeefg", "0x112233445566778899aabbccddeeff",
                          " 0112233445566778899aabbccddeeff", "001122334455667g",
                          "0011223344556677 "}) {
    INFO('"' << bad << '"');
    CHECK_FALSE(from_hex(bad, out));
    CHECK(out == before);
  }
}
