#include "thingsync/core/digest.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace thingsync::core {
namespace {

std::string to_hex(const unsigned char* md, unsigned int len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

[[noreturn]] void fail() { throw std::runtime_error("OpenSSL: SHA-256 failed"); }

}  // namespace

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) fail();
  return to_hex(md.data(), len);
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  if (impl_->ctx == nullptr || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1) fail();
}

Sha256::~Sha256() = default;

Sha256& Sha256::add(std::string_view piece) {
  if (EVP_DigestUpdate(impl_->ctx, piece.data(), piece.size()) != 1) fail();
  return *this;
}

std::string Sha256::hex() {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx, md.data(), &len) != 1) fail();
  return to_hex(md.data(), len);
}

}  // namespace thingsync::core
