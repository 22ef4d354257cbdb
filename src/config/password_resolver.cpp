#include "thingsync/config/password_resolver.hpp"

#include <optional>

#include "echo.hpp"
#include "thingsync/core/password.hpp"
#include "thingsync/sys/secret_file.hpp"

namespace thingsync::config {
namespace {

using SecretOrError = core::Result<core::Secret, std::string>;

SecretOrError read_secret_file(const std::string& path, std::string_view what, std::size_t limit) {
  return sys::read_secret_file(path, std::string(what) + " " + detail::echo_path(path), limit);
}

SecretOrError read_fleet_key(const std::string& path) {
  auto key = read_secret_file(path, "fleet key file", kMaxFleetKeyFileBytes);
  if (!key) return key;
  const std::size_t n = key->reveal().size();
  const std::string shown = detail::echo_path(path);
  if (n == 0) return SecretOrError::failure("fleet key file " + shown + " is empty");
  if (n < kMinFleetKeyBytes) {
    return SecretOrError::failure("fleet key " + shown + " is too short (" + std::to_string(n) +
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
      got = read_secret_file(s.ref, "password file", kMaxPasswordFileBytes);
      origin = "the password in file " + detail::echo_path(s.ref);
      break;
    case PasswordSource::Kind::kEnv: {
      auto v = env ? env(s.ref) : std::nullopt;
      if (!v) {
        return SecretOrError::failure("environment variable " + detail::echo(s.ref) +
                                      " is not set");
      }
      got = core::Secret(std::move(*v));
      origin = "the password in environment variable " + detail::echo(s.ref);
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

// What source `s` yields: a password, or for kDerive a deriver; or why it yields nothing.
struct Resolved {
  std::optional<std::string> error;
  std::unique_ptr<core::PasswordDeriver> deriver;  // kDerive
  core::Secret secret;                             // the others
};

Resolved resolve_source(const PasswordSource& s, const EnvLookup& env) {
  Resolved r;
  switch (s.kind) {
    case PasswordSource::Kind::kDerive:
      // A derived password meets the policy by construction: only the key needs checking.
      if (auto key = read_fleet_key(s.ref)) {
        r.deriver = std::make_unique<core::PasswordDeriver>(*key);
      } else {
        r.error = std::move(key.error());
      }
      break;
    case PasswordSource::Kind::kFile:
    case PasswordSource::Kind::kEnv:
    case PasswordSource::Kind::kValue:
      if (auto pw = read_literal_source(s, env)) {
        r.secret = std::move(*pw);
      } else {
        r.error = std::move(pw.error());
      }
      break;
  }
  return r;
}

}  // namespace

struct PasswordResolver::Impl {
  const DesiredState& state;
  EnvLookup env;
  std::vector<std::optional<Resolved>> cache;

  Resolved& get(std::uint32_t index) {
    auto& slot = cache[index];
    if (!slot) slot = resolve_source(state.sources[index], env);
    return *slot;
  }
};

PasswordResolver::PasswordResolver(const DesiredState& state, EnvLookup env)
    : impl_(std::make_unique<Impl>(Impl{state, std::move(env), {}})) {
  impl_->cache.resize(state.sources.size());
}

PasswordResolver::~PasswordResolver() = default;

core::Result<core::Secret, std::string_view> PasswordResolver::password(const DesiredEntry& e) {
  return password(e, e.device.unpack());
}

core::Result<core::Secret, std::string_view> PasswordResolver::password(
    const DesiredEntry& e, const core::DeviceId& device) {
  using R = core::Result<core::Secret, std::string_view>;
  auto& c = impl_->get(e.source);
  if (c.error) return R::failure(*c.error);
  if (c.deriver) return c.deriver->derive(device);
  return c.secret;
}

core::Result<core::Secret, core::Diagnostic> PasswordResolver::resolve(const DesiredEntry& e) {
  using R = core::Result<core::Secret, core::Diagnostic>;
  const core::DeviceId device = e.device.unpack();
  auto pw = password(e, device);
  if (!pw) {
    return R::failure({impl_->state.files[e.file], e.line, e.column, core::Severity::kError,
                       "no password for " + device.canonical() + ": " + std::string(pw.error())});
  }
  return std::move(pw.value());
}

core::Diagnostics source_errors(const DesiredState& state, const SourceFailures& failures) {
  core::Diagnostics out;
  out.reserve(failures.size());
  for (const auto& [index, f] : failures) {
    const PasswordSource& s = state.sources[index];
    std::string msg = f.why;
    // A literal is its own source: its count is always one and says nothing.
    if (s.kind != PasswordSource::Kind::kValue && f.bindings > 0) {
      msg +=
          "; used by " + std::to_string(f.bindings) + (f.bindings == 1 ? " binding" : " bindings");
    }
    out.push_back({state.files[s.file], s.line, s.column, core::Severity::kError, std::move(msg)});
  }
  core::sort_diagnostics(out);
  return out;
}

core::Diagnostics validate_sources(const DesiredState& state, const EnvLookup& env) {
  SourceFailures failures;
  for (std::uint32_t i = 0; i < state.sources.size(); ++i) {
    if (auto r = resolve_source(state.sources[i], env); r.error) {
      failures[i].why = std::move(*r.error);
    }
  }
  if (!failures.empty()) {
    for (const auto& b : state.bindings) {
      if (auto it = failures.find(b.source); it != failures.end()) ++it->second.bindings;
    }
  }
  return source_errors(state, failures);
}

}  // namespace thingsync::config
