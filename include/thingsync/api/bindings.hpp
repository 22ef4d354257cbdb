#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "thingsync/api/client.hpp"
#include "thingsync/api/decode.hpp"
#include "thingsync/api/error.hpp"
#include "thingsync/core/binding.hpp"
#include "thingsync/core/device_id.hpp"
#include "thingsync/core/result.hpp"
#include "thingsync/core/secret.hpp"

namespace thingsync::api {

/// Filters of GET /mqtt/bindings. Times are ms since the Unix epoch, sent as ISO 8601 with ms.
struct ListQuery {
  std::optional<std::string> client_id;
  std::optional<std::string> device_id;  ///< any spelling; sent as given
  std::optional<std::string> username;
  std::optional<std::int64_t> created_before_ms;
  std::optional<std::int64_t> created_since_ms;
  std::optional<std::int64_t> modified_before_ms;
  std::optional<std::int64_t> modified_since_ms;  ///< inclusive
  std::optional<std::string> sort;                ///< "createdAt,-modifiedAt"
  std::optional<int> limit;                       ///< page size

  /// "clientId=…&deviceId=…" (percent-encoded, in a fixed order); empty when no filter is set.
  std::string to_query_string() const;
};

/// What a list saw besides its items.
struct ListSummary {
  std::size_t pages = 0;
  /// The server's time when the list began: the `Date` header of its first page, else unset.
  /// A watermark must never pass it (a binding stamped by a node whose clock runs ahead must
  /// not hide the changes that come after it).
  std::optional<std::int64_t> server_time_ms;
};

struct ListResult {
  std::vector<core::RemoteBinding> bindings;
  std::vector<std::string> skipped;  ///< remote ids with an unparseable deviceId (left alone)
  std::size_t pages = 0;
  std::optional<std::int64_t> server_time_ms;  ///< ListSummary::server_time_ms
};

struct CreateResult {
  core::RemoteBinding binding;
  /// The create's outcome was unknown (or 409) and the device turned out to have a binding:
  /// it was adopted instead of created. Its password may not be ours: PUT it once.
  bool adopted = false;
};

enum class DeleteResult : std::uint8_t { kDeleted, kAlreadyGone };

/// The Things MQTT Bindings operations: the narrow port through which the engine reaches the
/// API. BindingsApi is the HTTP one; tests drive the engine with an in-memory one. Not
/// thread-safe: use it from one io_context thread.
///
/// The virtual operations are single requests as the API answers them (the transport may
/// retry what is safe to retry). The rules built on them (a create whose outcome is unknown is
/// looked up before anything is re-sent) are the non-virtual members, so that they hold
/// whatever the port.
class Bindings {
 public:
  virtual ~Bindings() = default;

  using PageHandler = std::function<void(const Page&)>;
  /// Every page of the query, following `next` links until there is none. All or nothing: on
  /// error the pages already seen must be treated as incomplete.
  virtual net::awaitable<core::Result<ListSummary, ApiError>> list_pages(ListQuery query,
                                                                         PageHandler on_page) = 0;
  virtual net::awaitable<core::Result<core::RemoteBinding, ApiError>> get(
      std::string binding_id) = 0;
  /// One POST, never re-sent. Anything but a definite answer (a timeout, a connection lost
  /// after sending, 408, any 5xx) fails with kUnknownOutcome: the binding may exist.
  virtual net::awaitable<core::Result<core::RemoteBinding, ApiError>> post(
      core::DeviceId device, core::Secret password) = 0;
  virtual net::awaitable<core::Result<core::RemoteBinding, ApiError>> update(
      std::string binding_id, core::DeviceId device, core::Secret password) = 0;
  /// DELETE; 404 means the binding is already gone, which is success.
  virtual net::awaitable<core::Result<DeleteResult, ApiError>> remove(std::string binding_id) = 0;
  /// How many POSTs one create() may send (each after a lookup that found nothing).
  virtual std::uint32_t create_rounds() const { return 3; }

  /// list_pages() collected into one vector.
  net::awaitable<core::Result<ListResult, ApiError>> list_all(ListQuery query);
  /// Bindings of one device, oldest first (a lookup by deviceId).
  net::awaitable<core::Result<std::vector<core::RemoteBinding>, ApiError>> find_by_device(
      core::DeviceId device);
  /// POST. When the outcome is unknown (or 409), looks the device up before anything is
  /// re-sent: adopts the oldest binding it has, else posts again (at most create_rounds()).
  /// This holds against an API that accepts a second binding for a device.
  net::awaitable<core::Result<CreateResult, ApiError>> create(core::DeviceId device,
                                                               core::Secret password);
};

/// The JSON body of a POST or PUT: {"deviceId":"…","password":"…"}, escaped as
/// nlohmann::json::dump() would, but written into one buffer sized up front, so that no
/// reallocated or temporary copy of the password is freed unwiped. Throws
/// std::invalid_argument (naming no byte of it) when the password is not UTF-8.
std::string binding_body(const core::DeviceId& device, const core::Secret& password);

/// The Bindings port over HTTP: one ApiClient (auth, rate limit, retries of what is safe).
class BindingsApi final : public Bindings {
 public:
  explicit BindingsApi(ApiClient& client) : client_(client) {}

  /// A link to another scheme, host or port fails with kProtocol and is never requested.
  net::awaitable<core::Result<ListSummary, ApiError>> list_pages(ListQuery query,
                                                                 PageHandler on_page) override;
  net::awaitable<core::Result<core::RemoteBinding, ApiError>> get(std::string binding_id) override;
  net::awaitable<core::Result<core::RemoteBinding, ApiError>> post(core::DeviceId device,
                                                                   core::Secret password) override;
  net::awaitable<core::Result<core::RemoteBinding, ApiError>> update(
      std::string binding_id, core::DeviceId device, core::Secret password) override;
  net::awaitable<core::Result<DeleteResult, ApiError>> remove(std::string binding_id) override;
  std::uint32_t create_rounds() const override;

 private:
  ApiClient& client_;
};

}  // namespace thingsync::api
