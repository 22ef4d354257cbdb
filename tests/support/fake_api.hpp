#pragma once

// An in-memory Things API with all the freedom the OpenAPI file leaves the real one, for driving
// the engine's passes in a unit test or a simulation (tests/simulation): it accepts a second
// binding for a device, can commit a write and then answer 5xx or time out, stamps modifiedAt
// from a clock the test moves (skewed if it likes), pages by a cursor on (createdAt, id) so that
// pages shift while bindings change between them, and cannot show deletes to a modifiedSince
// list. Portal actions change bindings behind thingsync's back. Not thread-safe; passwords are
// kept in memory only to check convergence.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
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
    std::string client_id;      ///< the owner of the device; a scoped list shows only its own
    std::uint64_t created_seq = 0;  ///< calls answered before it was created (see Call::seq)
    bool by_thingsync = false;      ///< created by a POST, not in the portal
  };

  /// One request as the port receives it; each page of a list is one.
  enum class Op : std::uint8_t { kList, kGet, kPost, kPut, kDelete };
  struct Call {
    Op op = Op::kList;
    std::string target;     ///< POST: canonical device; GET/PUT/DELETE: binding id; list: query
    std::size_t page = 0;   ///< list: 0 for the first page
    const api::ListQuery* query = nullptr;  ///< list only
    std::uint64_t seq = 0;  ///< calls before this one
  };
  /// What a hook makes of a call: answered as usual, or failed with `error` before anything
  /// happens, or after a write was committed (a list or a GET fails the same either way).
  struct Verdict {
    enum class When : std::uint8_t { kNormal, kBefore, kAfter } when = When::kNormal;
    api::ApiError error;
  };

  // ---- the world --------------------------------------------------------------------------
  std::int64_t now_ms = 1'800'000'000'000;  ///< the API's clock; each write moves it 1 s on
  bool duplicates_allowed = true;            ///< false: a second binding is a 409
  int creates_then_502 = 0;      ///< the next N POSTs are committed, then answered 502
  int creates_then_timeout = 0;  ///< the next N POSTs are committed, then never answered
  std::size_t page_size = 2;    ///< small, so that every list has several pages
  /// true: a cursor is an offset into the list as it is when the next page is asked for, so a
  /// binding deleted behind the cursor makes the list skip one (an API may page so; the spec's
  /// cursor is opaque). false: it names the last item given (createdAt, id).
  bool offset_cursor = false;
  std::size_t fail_list_after_pages = 0;  ///< the next list answers 500 after this many pages
  int fail_lists = 0;                     ///< the next N lists answer 500 at once
  int fail_puts = 0;                      ///< the next N PUTs answer 500, not done
  std::map<std::string, Stored> store;  ///< by binding id
  std::vector<std::string> requests;    ///< "POST imei:…", "PUT id", "GET id", "LIST …"
  std::uint64_t calls = 0;              ///< requests answered so far (each page counts)
  std::string default_client;           ///< the client a POST binds for
  /// Added to the API's clock for each stamp (createdAt, modifiedAt): nodes whose clocks differ.
  std::function<std::int64_t()> stamp_skew;
  /// Before each request: may fail it, and may change the world first (a portal action
  /// between two pages of a list, a process that dies).
  std::function<Verdict(const Call&)> on_call;
  /// After each committed write: the call, and the binding as it was before (PUT, DELETE) or
  /// is now (POST).
  std::function<void(const Call&, const Stored&)> on_commit;
  bool record_requests = true;  ///< false: `requests` stays empty (long simulations)

  // ---- the portal: writes thingsync did not make ------------------------------------------
  std::string portal_create(std::string_view device, std::string password,
                            std::string by = "portal-user", std::string client = {});
  void portal_edit(const std::string& id, std::string password, std::string by = "portal-user");
  void portal_delete(const std::string& id);
  /// Sets a binding's modifiedAt as a node with a wrong clock would.
  void stamp(const std::string& id, std::int64_t modified_at_ms);
  /// The API's clock for a stamp, skewed as stamp_skew says.
  std::int64_t stamp_now() const { return now_ms + (stamp_skew ? stamp_skew() : 0); }
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
  std::string add(const core::DeviceId& device, std::string password, std::string by,
                  std::string client);
  /// Consumes one commit-then-fail fault, if any: the error to answer after the commit.
  std::optional<api::ApiError> after_create_fault();
  /// Counts the call and asks on_call about it.
  Verdict begin(Op op, std::string target, std::size_t page = 0,
                const api::ListQuery* query = nullptr);
  void log(std::string line);
  Call last_;  // the call begin() was last asked about, for on_commit
  std::uint64_t next_id_ = 1;
};

}  // namespace thingsync::testing
