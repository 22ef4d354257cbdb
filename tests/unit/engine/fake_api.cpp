#include "fake_api.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace thingsync::testing {
namespace {

api::ApiError status_error(api::ErrorKind kind, int status, std::string title) {
  api::ApiError e;
  e.kind = kind;
  e.status = status;
  e.title = std::move(title);
  return e;
}

// `co_return failed(e);` into whichever Result the operation returns.
struct Failed {
  api::ApiError error;
  template <class T>
  operator core::Result<T, api::ApiError>() && {  // NOLINT: implicit by design
    return core::Result<T, api::ApiError>::failure(std::move(error));
  }
};
Failed failed(api::ApiError e) { return {std::move(e)}; }

core::DeviceId device_of(std::string_view spelling) {
  auto d = core::DeviceId::parse(spelling);
  if (!d) throw std::invalid_argument("bad device id in a test");
  return *d;
}

}  // namespace

std::string FakeApi::add(const core::DeviceId& device, std::string password, std::string by) {
  char id[40];
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012llu",
                static_cast<unsigned long long>(next_id_++));
  now_ms += 1000;
  store.insert_or_assign(id, Stored{{id, device, now_ms, now_ms, std::move(by)}, std::move(password)});
  return id;
}

std::string FakeApi::portal_create(std::string_view device, std::string password,
                                   std::string by) {
  return add(device_of(device), std::move(password), std::move(by));
}

void FakeApi::portal_edit(const std::string& id, std::string password, std::string by) {
  now_ms += 1000;
  auto& s = store.at(id);
  s.password = std::move(password);
  s.binding.modified_at_ms = now_ms;
  s.binding.modified_by = std::move(by);
}

void FakeApi::portal_delete(const std::string& id) { store.erase(id); }

void FakeApi::move(const std::string& id, std::string_view device) {
  now_ms += 1000;
  auto& b = store.at(id).binding;
  b.device = device_of(device);
  b.modified_at_ms = now_ms;
}

void FakeApi::stamp(const std::string& id, std::int64_t modified_at_ms) {
  store.at(id).binding.modified_at_ms = modified_at_ms;
}

std::vector<FakeApi::Stored> FakeApi::of_device(std::string_view device) const {
  const auto d = device_of(device);
  std::vector<Stored> out;
  for (const auto& [id, s] : store) {
    if (s.binding.device == d) out.push_back(s);
  }
  return out;
}

std::size_t FakeApi::count(std::string_view prefix) const {
  return static_cast<std::size_t>(std::count_if(
      requests.begin(), requests.end(), [&](const std::string& r) { return r.starts_with(prefix); }));
}

std::optional<api::ApiError> FakeApi::after_create_fault() {
  // What the client makes of a POST answered 502, or not answered: the outcome is unknown.
  if (creates_then_502 > 0) {
    --creates_then_502;
    return status_error(api::ErrorKind::kUnknownOutcome, 502, "Bad Gateway");
  }
  if (creates_then_timeout > 0) {
    --creates_then_timeout;
    return status_error(api::ErrorKind::kUnknownOutcome, 0, "timed out");
  }
  return std::nullopt;
}

net::awaitable<core::Result<api::ListSummary, api::ApiError>> FakeApi::list_pages(
    api::ListQuery query, PageHandler on_page) {
  requests.push_back("LIST sort=" + query.sort.value_or("") +
                     (query.modified_since_ms ? " since=" + std::to_string(*query.modified_since_ms)
                                              : std::string()) +
                     (query.device_id ? " device=" + *query.device_id : std::string()));
  std::vector<const Stored*> hits;
  for (const auto& [id, s] : store) {
    if (query.modified_since_ms && s.binding.modified_at_ms < *query.modified_since_ms) continue;
    if (query.device_id && s.binding.device != device_of(*query.device_id)) continue;
    hits.push_back(&s);
  }
  std::sort(hits.begin(), hits.end(), [](const Stored* a, const Stored* b) {
    return std::tie(a->binding.created_at_ms, a->binding.id) <
           std::tie(b->binding.created_at_ms, b->binding.id);
  });
  if (fail_lists > 0) {
    --fail_lists;
    co_return failed(status_error(api::ErrorKind::kServer, 500, "Internal Server Error"));
  }
  api::ListSummary summary;
  summary.server_time_ms = now_ms;
  const std::size_t fail_after = std::exchange(fail_list_after_pages, 0);
  for (std::size_t i = 0; i < hits.size() || i == 0; i += page_size) {
    if (fail_after > 0 && summary.pages == fail_after) {
      co_return failed(status_error(api::ErrorKind::kServer, 500, "Internal Server Error"));
    }
    api::Page page;
    for (std::size_t j = i; j < std::min(hits.size(), i + page_size); ++j) {
      page.items.push_back(hits[j]->binding);
    }
    ++summary.pages;
    on_page(page);
    if (hits.empty()) break;
  }
  co_return summary;
}

net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> FakeApi::get(std::string id) {
  requests.push_back("GET " + id);
  const auto it = store.find(id);
  if (it == store.end()) co_return failed(status_error(api::ErrorKind::kClient, 404, "Not Found"));
  co_return it->second.binding;
}

net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> FakeApi::post(
    core::DeviceId device, core::Secret password) {
  requests.push_back("POST " + device.canonical());
  if (!duplicates_allowed) {
    for (const auto& [id, s] : store) {
      if (s.binding.device == device) {
        co_return failed(status_error(api::ErrorKind::kClient, 409, "Conflict"));
      }
    }
  }
  const auto id = add(device, password.reveal(), "thingsync");
  if (auto e = after_create_fault()) co_return failed(*e);
  co_return store.at(id).binding;
}

net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> FakeApi::update(
    std::string id, core::DeviceId device, core::Secret password) {
  requests.push_back("PUT " + id);
  if (fail_puts > 0) {
    --fail_puts;
    co_return failed(status_error(api::ErrorKind::kServer, 500, "Internal Server Error"));
  }
  const auto it = store.find(id);
  if (it == store.end()) co_return failed(status_error(api::ErrorKind::kClient, 404, "Not Found"));
  now_ms += 1000;
  it->second.password = password.reveal();
  it->second.binding.device = device;
  it->second.binding.modified_at_ms = now_ms;
  it->second.binding.modified_by = "thingsync";
  co_return it->second.binding;
}

net::awaitable<core::Result<api::DeleteResult, api::ApiError>> FakeApi::remove(std::string id) {
  requests.push_back("DELETE " + id);
  if (store.erase(id) == 0) co_return api::DeleteResult::kAlreadyGone;
  co_return api::DeleteResult::kDeleted;
}

}  // namespace thingsync::testing
