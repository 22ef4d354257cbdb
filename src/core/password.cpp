#include "thingsync/core/password.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace thingsync::core {
namespace {

// The alphabets of README.md ("Password derivation"). 64 characters in total, so `byte mod 64`
// takes the low six bits of a byte and every character is equally likely.
constexpr std::string_view kUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kLower = "abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kDigit = "0123456789";
constexpr std::string_view kSpecial = "-.";
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.";
static_assert(kAlphabet.size() == 64);
constexpr std::size_t kPasswordLength = 32;
constexpr std::size_t kMinPolicyLength = 24;

bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

// HMAC-SHA256 with one EVP_MAC context: the key is set once, and EVP_MAC_init without a key
// restarts the MAC under the same key, so each call costs no allocation.
class Hmac {
 public:
  explicit Hmac(std::string_view key) {
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac_ != nullptr) ctx_ = EVP_MAC_CTX_new(mac_);
    if (ctx_ == nullptr) {
      release();
      throw std::runtime_error("OpenSSL: HMAC is not available");
    }
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    // A zero-length key is valid HMAC; OpenSSL wants a non-null pointer for it.
    static const unsigned char kEmpty = 0;
    const auto* key_bytes =
        key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
    if (EVP_MAC_init(ctx_, key_bytes, key.size(), params) != 1) {
      release();
      throw std::runtime_error("OpenSSL: cannot initialise HMAC-SHA256");
    }
  }
  ~Hmac() { release(); }
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;

  using Digest = std::array<unsigned char, 32>;

  /// HMAC of the concatenation of `parts`.
  template <typename... Parts>
  Digest operator()(const Parts&... parts) {
    Digest out{};
    std::size_t len = 0;
    bool ok = EVP_MAC_init(ctx_, nullptr, 0, nullptr) == 1;
    ((ok = ok && EVP_MAC_update(ctx_, reinterpret_cast<const unsigned char*>(parts.data()),
                                parts.size()) == 1),
     ...);
    ok = ok && EVP_MAC_final(ctx_, out.data(), &len, out.size()) == 1 && len == out.size();
    if (!ok) throw std::runtime_error("OpenSSL: HMAC-SHA256 failed");
    return out;
  }

 private:
  void release() noexcept {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
    ctx_ = nullptr;
    mac_ = nullptr;
  }
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
};

}  // namespace

std::string password_policy_violation(std::string_view pw) {
  std::size_t chars = 0;
  bool lower = false, upper = false, digit = false, special = false;
  for (const char ch : pw) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c & 0xC0) != 0x80) ++chars;  // count UTF-8 code points, not bytes
    if (c < 0x20 || c == 0x7F) return "contains a control character";
    if (is_lower(c)) {
      lower = true;
    } else if (is_upper(c)) {
      upper = true;
    } else if (is_digit(c)) {
      digit = true;
    } else {
      special = true;
    }
  }
  if (chars < kMinPolicyLength) {
    return "has " + std::to_string(chars) + " characters, at least " +
           std::to_string(kMinPolicyLength) + " are required";
  }
  if (!lower) return "has no lower case letter";
  if (!upper) return "has no upper case letter";
  if (!digit) return "has no digit";
  if (!special) return "has no special character (anything but a letter or digit)";
  return {};
}

struct PasswordDeriver::Impl {
  explicit Impl(std::string_view key) : hmac(key) {}
  Hmac hmac;
};

PasswordDeriver::PasswordDeriver(const Secret& fleet_key) {
  if (fleet_key.empty()) throw std::invalid_argument("the fleet key is empty");
  impl_ = std::make_unique<Impl>(fleet_key.reveal());
}
PasswordDeriver::~PasswordDeriver() = default;

Secret PasswordDeriver::derive(const DeviceId& device) {
  auto mac = impl_->hmac(device.canonical());
  std::string pw(kPasswordLength, '\0');
  for (std::size_t i = 0; i < 28; ++i) pw[i] = kAlphabet[mac[i] % kAlphabet.size()];
  pw[28] = kLower[mac[28] % kLower.size()];
  pw[29] = kUpper[mac[29] % kUpper.size()];
  pw[30] = kDigit[mac[30] % kDigit.size()];
  pw[31] = kSpecial[mac[31] % kSpecial.size()];
  mac.fill(0);
  return Secret(std::move(pw));
}

struct Fingerprinter::Impl {
  explicit Impl(std::string_view salt) : hmac(salt) {}
  Hmac hmac;
};

Fingerprinter::Fingerprinter(std::string_view salt) : impl_(std::make_unique<Impl>(salt)) {}
Fingerprinter::~Fingerprinter() = default;

Fingerprint Fingerprinter::operator()(const DeviceId& device, const Secret& password) {
  constexpr std::string_view kSeparator("\0", 1);
  const auto mac = impl_->hmac(device.canonical(), kSeparator, password.reveal());
  Fingerprint fp{};
  for (std::size_t i = 0; i < fp.size(); ++i) fp[i] = mac[i];
  return fp;
}

std::string to_hex(const Fingerprint& fp) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out;
  out.reserve(fp.size() * 2);
  for (const auto b : fp) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0F]);
  }
  return out;
}

bool from_hex(std::string_view hex, Fingerprint& out) {
  constexpr std::size_t kVersion1Digits = 32;
  if (hex.size() == kVersion1Digits) {
    // The longer fingerprint of version 1: all of it must be hex, its first 8 bytes are kept.
    Fingerprint rest{};
    if (!from_hex(hex.substr(out.size() * 2), rest)) return false;
    hex = hex.substr(0, out.size() * 2);
  }
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Fingerprint fp{};
  for (std::size_t i = 0; i < fp.size(); ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    fp[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  out = fp;
  return true;
}

}  // namespace thingsync::core
