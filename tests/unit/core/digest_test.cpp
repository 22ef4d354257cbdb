#include "thingsync/core/digest.hpp"

#include <string>

#include <catch2/catch.hpp>

using thingsync::core::Sha256;
using thingsync::core::sha256_hex;

TEST_CASE("SHA-256 of known texts", "[core][digest]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256().hex() == sha256_hex(""));
}

TEST_CASE("SHA-256 in pieces is the digest of their concatenation", "[core][digest]") {
  std::string whole;
  Sha256 pieces;
  for (int i = 0; i < 1000; ++i) {
    const std::string line = "imei:35026680061" + std::to_string(1000 + i) + " 0011aabb\n";
    whole += line;
    pieces.add(line);
  }
  pieces.add("");
  CHECK(pieces.hex() == sha256_hex(whole));
  Sha256 other;
  other.add("ab").add("c");
  CHECK(other.hex() != sha256_hex(whole));
  CHECK(Sha256().add("ab").add("c").hex() == sha256_hex("abc"));
}
