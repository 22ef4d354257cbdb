#include "echo.hpp"

namespace thingsync::config::detail {
namespace {

constexpr std::size_t kPathHead = 40;
constexpr std::size_t kPathTail = kEchoBytes - kPathHead;

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0U) == 0x80U; }

// The longest prefix of `text` of at most `n` bytes that ends on a character boundary.
std::string_view head(std::string_view text, std::size_t n) {
  if (n >= text.size()) return text;
  while (n > 0 && continuation(text[n])) --n;
  return text.substr(0, n);
}

// The longest suffix of `text` of at most `n` bytes that starts on a character boundary.
std::string_view tail(std::string_view text, std::size_t n) {
  if (n >= text.size()) return text;
  std::size_t start = text.size() - n;
  while (start < text.size() && continuation(text[start])) ++start;
  return text.substr(start);
}

std::string marker(std::size_t size) {
  return "...[cut: " + std::to_string(size) + " bytes in all]";
}

}  // namespace

std::string echo(std::string_view text) {
  if (text.size() <= kEchoBytes) return std::string(text);
  return std::string(head(text, kEchoBytes)) + marker(text.size());
}

std::string echo_path(std::string_view path) {
  if (path.size() <= kEchoBytes) return std::string(path);
  return std::string(head(path, kPathHead)) + marker(path.size()) + "..." +
         std::string(tail(path, kPathTail));
}

}  // namespace thingsync::config::detail
