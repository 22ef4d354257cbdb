#pragma once

// An in-memory Things API with all the freedom the OpenAPI file leaves the real one, for driving
// the engine's passes in a unit test: it accepts a second binding for a device, can commit a write
// and then answer 5xx or time out, stamps modifiedAt from a clock the test moves (skewed if it
// likes), and cannot show deletes to a modifiedSince list. Portal actions change bindings behind
// thingsync's back. Not thread-safe; passwords are kept in memory only to check convergence.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "thingsync/api/bindings.hpp"

namespace thingsync::testing {
namespace net = boost::asio;

class FakeApi final : public api::Bindings {
 public:
  struct Stored {
    core::RemoteBinding binding;
    std::string password;
  };

  // ---- the world --------------------------------------------------------------------------
  std::int64_t now_ms = 1'800'000'000'000;  ///< the API's clock; each write moves it 1 s on
  bool duplicates_allowed = true;            ///< false: a second binding is a 409
  int creates_then_502 = 0;      ///< the next N POSTs are committed, then answered 502
  int creates_then_timeout = 0;  ///< the next N POSTs are committed, then never answered
  std::size_t page_size = 2;    ///< small, so that every list has several pages
  std::size_t fail_list_after_pages = 0;  ///< the next list answers 500 after this many pages
  int fail_lists = 0;                     ///< the next N lists answer 500 at once
  int fail_puts = 0;                      ///< the next N PUTs answer 500, not done
  std::map<std::string, Stored> store;  ///< by binding id
  std::vector<std::string> requests;    ///< "POST imei:…", "PUT id", "GET id", "LIST …"

  // ---- the portal: writes thingsync did not make ------------------------------------------
  std::string portal_create(std::string_view device, std::string password,
                            std::string by = "portal-user");
  void portal_edit(const std::string& id, std::string password, std::string by = "portal-user");
  void portal_delete(const std::string& id);
  /// Sets a binding's modifiedAt as a node with a wrong clock would.
  void stamp(const std::string& id, std::int64_t modified_at_ms);
  /// Binds a binding to another device, as a portal PUT may.
  void move(const std::string& id, std::string_view device);

  // ---- what the test checks ---------------------------------------------------------------
  std::vector<Stored> of_device(std::string_view device) const;
  std::size_t count(std::string_view request_prefix) const;

  // ---- the port ---------------------------------------------------------------------------
  net::awaitable<core::Result<api::ListSummary, api::ApiError>> list_pages(
      api::ListQuery query, PageHandler on_page) override;
  net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> get(std::string id) override;
  net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> post(
      core::DeviceId device, core::Secret password) override;
  net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> update(
      std::string id, core::DeviceId device, core::Secret password) override;
  net::awaitable<core::Result<api::DeleteResult, api::ApiError>> remove(std::string id) override;

 private:
  std::string add(const core::DeviceId& device, std::string password, std::string by);
  /// Consumes one commit-then-fail fault, if any: the error to answer after the commit.
  std::optional<api::ApiError> after_create_fault();
  std::uint64_t next_id_ = 1;
};

}  // namespace thingsync::testing
