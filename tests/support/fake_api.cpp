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

std::string FakeApi::add(const core::DeviceId& device, std::string password, std::string by,
                         std::string client) {
  char id[40];
  std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012llu",
                static_cast<unsigned long long>(next_id_++));
  now_ms += 1000;
  const auto at = stamp_now();
  Stored s{{id, device, at, at, std::move(by)}, std::move(password), std::move(client), calls};
  store.insert_or_assign(id, std::move(s));
  return id;
}

std::string FakeApi::portal_create(std::string_view device, std::string password,
                                   std::string by, std::string client) {
  return add(device_of(device), std::move(password), std::move(by),
             client.empty() ? default_client : std::move(client));
}

void FakeApi::portal_edit(const std::string& id, std::string password, std::string by) {
  now_ms += 1000;
  auto& s = store.at(id);
  s.password = std::move(password);
  s.binding.modified_at_ms = stamp_now();
  s.binding.modified_by = std::move(by);
}

void FakeApi::portal_delete(const std::string& id) { store.erase(id); }

void FakeApi::move(const std::string& id, std::string_view device) {
  now_ms += 1000;
  auto& b = store.at(id).binding;
  b.device = device_of(device);
  b.modified_at_ms = stamp_now();
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

FakeApi::Verdict FakeApi::begin(Op op, std::string target, std::size_t page,
                                const api::ListQuery* query) {
  last_ = Call{op, std::move(target), page, query, calls++};
  if (!on_call) return {};
  return on_call(last_);
}

void FakeApi::log(std::string line) {
  if (record_requests) requests.push_back(std::move(line));
}

net::awaitable<core::Result<api::ListSummary, api::ApiError>> FakeApi::list_pages(
    api::ListQuery query, PageHandler on_page) {
  log("LIST sort=" + query.sort.value_or("") +
      (query.modified_since_ms ? " since=" + std::to_string(*query.modified_since_ms)
                               : std::string()) +
      (query.device_id ? " device=" + *query.device_id : std::string()));
  if (fail_lists > 0) {
    --fail_lists;
    co_return failed(status_error(api::ErrorKind::kServer, 500, "Internal Server Error"));
  }
  const std::optional<core::DeviceId> device =
      query.device_id ? std::optional(device_of(*query.device_id)) : std::nullopt;
  const auto matches = [&](const Stored& s) {
    if (query.modified_since_ms && s.binding.modified_at_ms < *query.modified_since_ms) return false;
    if (device && s.binding.device != *device) return false;
    return !query.client_id || s.client_id == *query.client_id;
  };
  api::ListSummary summary;
  summary.server_time_ms = now_ms;
  const std::size_t fail_after = std::exchange(fail_list_after_pages, 0);
  // A cursor names the (createdAt, id) of the last item given: each page is taken from the
  // store as it is when that page is asked for, as a server's cursor would.
  std::optional<std::pair<std::int64_t, std::string>> cursor;
  for (;;) {
    if (fail_after > 0 && summary.pages == fail_after) {
      co_return failed(status_error(api::ErrorKind::kServer, 500, "Internal Server Error"));
    }
    auto v = begin(Op::kList, query.to_query_string(), summary.pages, &query);
    if (v.when != Verdict::When::kNormal) co_return failed(std::move(v.error));
    std::vector<const Stored*> hits;
    for (const auto& [id, s] : store) {
      if (!matches(s)) continue;
      if (!offset_cursor && cursor &&
          std::tie(s.binding.created_at_ms, s.binding.id) <= std::tie(cursor->first, cursor->second)) {
        continue;
      }
      hits.push_back(&s);
    }
    std::sort(hits.begin(), hits.end(), [](const Stored* a, const Stored* b) {
      return std::tie(a->binding.created_at_ms, a->binding.id) <
             std::tie(b->binding.created_at_ms, b->binding.id);
    });
    if (offset_cursor) hits.erase(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(
                                                    std::min(hits.size(), summary.pages * page_size)));
    api::Page page;
    for (std::size_t j = 0; j < std::min(hits.size(), page_size); ++j) {
      page.items.push_back(hits[j]->binding);
    }
    ++summary.pages;
    const bool last = hits.size() <= page_size;
    if (!page.items.empty()) {
      cursor.emplace(page.items.back().created_at_ms, page.items.back().id);
    }
    on_page(page);
    if (last) break;
  }
  co_return summary;
}

net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> FakeApi::get(std::string id) {
  log("GET " + id);
  auto v = begin(Op::kGet, id);
  if (v.when != Verdict::When::kNormal) co_return failed(std::move(v.error));
  const auto it = store.find(id);
  if (it == store.end()) co_return failed(status_error(api::ErrorKind::kClient, 404, "Not Found"));
  co_return it->second.binding;
}

net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> FakeApi::post(
    core::DeviceId device, core::Secret password) {
  log("POST " + device.canonical());
  auto v = begin(Op::kPost, device.canonical());
  if (v.when == Verdict::When::kBefore) co_return failed(std::move(v.error));
  if (!duplicates_allowed) {
    for (const auto& [id, s] : store) {
      if (s.binding.device == device) {
        co_return failed(status_error(api::ErrorKind::kClient, 409, "Conflict"));
      }
    }
  }
  const auto id = add(device, password.reveal(), "thingsync", default_client);
  auto& stored = store.at(id);
  stored.by_thingsync = true;
  if (on_commit) on_commit(last_, stored);
  if (v.when == Verdict::When::kAfter) co_return failed(std::move(v.error));
  if (auto e = after_create_fault()) co_return failed(*e);
  co_return store.at(id).binding;
}

net::awaitable<core::Result<core::RemoteBinding, api::ApiError>> FakeApi::update(
    std::string id, core::DeviceId device, core::Secret password) {
  log("PUT " + id);
  auto v = begin(Op::kPut, id);
  if (v.when == Verdict::When::kBefore) co_return failed(std::move(v.error));
  if (fail_puts > 0) {
    --fail_puts;
    co_return failed(status_error(api::ErrorKind::kServer, 500, "Internal Server Error"));
  }
  const auto it = store.find(id);
  if (it == store.end()) co_return failed(status_error(api::ErrorKind::kClient, 404, "Not Found"));
  const Stored before = it->second;
  now_ms += 1000;
  it->second.password = password.reveal();
  it->second.binding.device = device;
  it->second.binding.modified_at_ms = stamp_now();
  it->second.binding.modified_by = "thingsync";
  if (on_commit) on_commit(last_, before);
  if (v.when == Verdict::When::kAfter) co_return failed(std::move(v.error));
  co_return store.at(id).binding;
}

net::awaitable<core::Result<api::DeleteResult, api::ApiError>> FakeApi::remove(std::string id) {
  log("DELETE " + id);
  auto v = begin(Op::kDelete, id);
  if (v.when == Verdict::When::kBefore) co_return failed(std::move(v.error));
  const auto it = store.find(id);
  if (it == store.end()) co_return api::DeleteResult::kAlreadyGone;
  const Stored before = it->second;
  store.erase(it);
  if (on_commit) on_commit(last_, before);
  if (v.when == Verdict::When::kAfter) co_return failed(std::move(v.error));
  co_return api::DeleteResult::kDeleted;
}

}  // namespace thingsync::testing
