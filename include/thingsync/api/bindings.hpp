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

struct ListResult {
  std::vector<core::RemoteBinding> bindings;
  std::vector<std::string> skipped;  ///< remote ids with an unparseable deviceId (left alone)
  std::size_t pages = 0;
};

struct CreateResult {
  core::RemoteBinding binding;
  /// The create's outcome was unknown (or 409) and the device turned out to have a binding:
  /// it was adopted instead of created. Its password may not be ours: PUT it once.
  bool adopted = false;
};

enum class DeleteResult : std::uint8_t { kDeleted, kAlreadyGone };

/// The Things MQTT Bindings operations over one ApiClient (which does auth, rate limit, retries).
/// Not thread-safe: use it from the io_context thread.
class BindingsApi {
 public:
  explicit BindingsApi(ApiClient& client) : client_(client) {}

  using PageHandler = std::function<void(const Page&)>;
  /// Every page of the query, following `next` links (absolute or relative) until there is none.
  /// A link to another scheme, host or port fails with kProtocol and is never requested.
  /// All or nothing: on error the pages already seen must be treated as incomplete.
  net::awaitable<core::Result<std::size_t, ApiError>> list_pages(ListQuery query,
                                                                 PageHandler on_page);
  /// list_pages() collected into one vector.
  net::awaitable<core::Result<ListResult, ApiError>> list_all(ListQuery query);
  /// Bindings of one device, oldest first (a lookup by deviceId).
  net::awaitable<core::Result<std::vector<core::RemoteBinding>, ApiError>> find_by_device(
      core::DeviceId device);

  net::awaitable<core::Result<core::RemoteBinding, ApiError>> get(std::string binding_id);
  /// POST. When the outcome is unknown (or 409), looks the device up first: adopts an existing
  /// binding, otherwise posts again (bounded by the backoff policy's attempts).
  net::awaitable<core::Result<CreateResult, ApiError>> create(core::DeviceId device,
                                                               core::Secret password);
  net::awaitable<core::Result<core::RemoteBinding, ApiError>> update(std::string binding_id,
                                                                     core::DeviceId device,
                                                                     core::Secret password);
  /// DELETE; 404 means the binding is already gone, which is success.
  net::awaitable<core::Result<DeleteResult, ApiError>> remove(std::string binding_id);

 private:
  ApiClient& client_;
};

}  // namespace thingsync::api
