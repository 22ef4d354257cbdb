// thingsync export: the remote bindings in scope, written as desired-state YAML.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "cli/app.hpp"
#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "cli/oneshot.hpp"
#include "thingsync/core/time.hpp"
#include "thingsync/obs/log.hpp"

namespace thingsync::cli {
namespace net = boost::asio;

int run_export(const CommandOptions& opts) {
  auto log = obs::logger("main");
  auto cfg = load_config_or_report(opts.config_file);
  if (!cfg) return kExitError;
  net::io_context ioc;
  auto session = engine::Session::create(ioc.get_executor(), *cfg, nullptr);
  if (!session) {
    log->error("{}", session.error());
    return kExitError;
  }
  auto list = run_on(ioc, session.value()->bindings().list_all(session.value()->scope_query()));
  if (!list) {
    log->error("listing the remote bindings failed: {}", list.error().to_string());
    return kExitError;
  }
  std::map<core::DeviceKind, std::vector<core::DeviceId>> by_kind;
  for (const auto& b : list->bindings) by_kind[b.device.kind()].push_back(b.device);

  const std::filesystem::path dir = opts.output_dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    log->error("cannot create {}: {}", dir.string(), ec.message());
    return kExitError;
  }
  const auto stamp = core::format_iso8601_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count());
  std::size_t written = 0;
  for (auto& [kind, devices] : by_kind) {
    std::sort(devices.begin(), devices.end());
    devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
    const auto file = dir / (std::string(core::kind_name(kind)) + ".yaml");
    if (std::filesystem::exists(file)) {
      log->error("{} exists: export does not overwrite; remove it or choose another --output-dir",
                 file.string());
      return kExitError;
    }
    std::ofstream out(file);
    out << "# Exported by thingsync export from " << cfg->api.base_url << " at " << stamp << ": "
        << devices.size() << " " << core::kind_name(kind) << " bindings.\n"
        << "# Passwords are write-only in the Things API and cannot be exported. Fill in the\n"
        << "# password source below (derive, file or env) before using this file; until then\n"
        << "# `thingsync validate` reports the missing key file.\n"
        << "defaults:\n  password:\n    derive:\n      keyFile: FILL-IN-the-fleet-key-file\n"
        << "bindings:\n";
    for (const auto& d : devices) out << "  - deviceId: \"" << d.canonical() << "\"\n";
    out.close();
    if (!out) {
      log->error("cannot write {}", file.string());
      return kExitError;
    }
    written += devices.size();
    std::printf("wrote %s (%zu bindings)\n", file.string().c_str(), devices.size());
  }
  std::printf("exported %zu bindings into %s\n", written, dir.string().c_str());
  return kExitOk;
}

}  // namespace thingsync::cli
