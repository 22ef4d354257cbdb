#include "thingsync/config/password_resolver.hpp"

#include <optional>

#include "thingsync/core/password.hpp"
#include "yaml_tree.hpp"

namespace thingsync::config {
namespace {

using SecretOrError = core::Result<core::Secret, std::string>;

// Reads a file holding a secret, without its one trailing newline ("\n" or "\r\n").
SecretOrError read_secret_file(const std::string& path, std::string_view what) {
  std::string text;
  std::string why;
  if (!detail::read_file(path, text, why)) {
    return SecretOrError::failure("cannot read " + std::string(what) + " " + path + ": " + why);
  }
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
  }
  return core::Secret(std::move(text));
}

SecretOrError read_fleet_key(const std::string& path) {
  auto key = read_secret_file(path, "fleet key file");
  if (!key) return key;
  const std::size_t n = key->reveal().size();
  if (n == 0) return SecretOrError::failure("fleet key file " + path + " is empty");
  if (n < kMinFleetKeyBytes) {
    return SecretOrError::failure("fleet key " + path + " is too short (" + std::to_string(n) +
                                  " bytes, need at least " + std::to_string(kMinFleetKeyBytes) +
                                  ")");
  }
  return key;
}

// The password a non-derive source yields, checked against the API's policy.
SecretOrError read_literal_source(const PasswordSource& s, const EnvLookup& env) {
  std::optional<SecretOrError> got;
  std::string origin;
  switch (s.kind) {
    case PasswordSource::Kind::kFile:
      got = read_secret_file(s.ref, "password file");
      origin = "the password in file " + s.ref;
      break;
    case PasswordSource::Kind::kEnv: {
      auto v = env ? env(s.ref) : std::nullopt;
      if (!v) return SecretOrError::failure("environment variable " + s.ref + " is not set");
      got = core::Secret(std::move(*v));
      origin = "the password in environment variable " + s.ref;
      break;
    }
    case PasswordSource::Kind::kValue:
      got = s.value;
      origin = "the literal password value";
      break;
    case PasswordSource::Kind::kDerive:
      return SecretOrError::failure("internal error: derive source read as a literal");
  }
  if (!*got) return std::move(*got);
  if (auto why = core::password_policy_violation((*got)->reveal()); !why.empty()) {
    return SecretOrError::failure(origin + " does not meet the API's password policy: " + why);
  }
  return std::move(*got);
}

core::Diagnostic at_source(const DesiredState& st, const PasswordSource& s, std::string msg) {
  return {st.files[s.file], s.line, s.column, core::Severity::kError, std::move(msg)};
}

}  // namespace

struct PasswordResolver::Impl {
  struct Cached {
    std::optional<std::string> error;
    std::unique_ptr<core::PasswordDeriver> deriver;  // kDerive
    core::Secret secret;                             // the others
  };
  const DesiredState& state;
  EnvLookup env;
  std::vector<std::optional<Cached>> cache;

  Cached& get(std::uint32_t index) {
    auto& slot = cache[index];
    if (slot) return *slot;
    slot.emplace();
    const PasswordSource& s = state.sources[index];
    if (s.kind == PasswordSource::Kind::kDerive) {
      auto key = read_fleet_key(s.ref);
      if (key) {
        slot->deriver = std::make_unique<core::PasswordDeriver>(*key);
      } else {
        slot->error = key.error();
      }
    } else {
      auto pw = read_literal_source(s, env);
      if (pw) {
        slot->secret = std::move(*pw);
      } else {
        slot->error = pw.error();
      }
    }
    return *slot;
  }
};

PasswordResolver::PasswordResolver(const DesiredState& state, EnvLookup env)
    : impl_(std::make_unique<Impl>(Impl{state, std::move(env), {}})) {
  impl_->cache.resize(state.sources.size());
}

PasswordResolver::~PasswordResolver() = default;

core::Result<core::Secret, core::Diagnostic> PasswordResolver::resolve(const DesiredEntry& e) {
  using R = core::Result<core::Secret, core::Diagnostic>;
  auto& c = impl_->get(e.source);
  if (c.error) {
    return R::failure({impl_->state.files[e.file], e.line, e.column, core::Severity::kError,
                       "no password for " + e.device.canonical() + ": " + *c.error});
  }
  if (c.deriver) return c.deriver->derive(e.device);
  return c.secret;
}

core::Diagnostics validate_sources(const DesiredState& state, const EnvLookup& env) {
  core::Diagnostics out;
  for (const auto& s : state.sources) {
    if (s.kind == PasswordSource::Kind::kDerive) {
      // A derived password meets the policy by construction: only the key needs checking.
      if (auto key = read_fleet_key(s.ref); !key) out.push_back(at_source(state, s, key.error()));
    } else if (auto pw = read_literal_source(s, env); !pw) {
      out.push_back(at_source(state, s, pw.error()));
    }
  }
  core::sort_diagnostics(out);
  return out;
}

}  // namespace thingsync::config
