#include "thingsync/engine/observer.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "thingsync/engine/executor.hpp"

namespace thingsync::engine {

Clocks Clocks::system() {
  using namespace std::chrono;
  return {[] { return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(); },
          [] { return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count(); }};
}

Observer::Observer(api::Bindings& api, api::ListQuery scope, std::int64_t overlap_ms,
                   Clocks clocks)
    : api_(api), scope_(std::move(scope)), clocks_(std::move(clocks)), watermark_(overlap_ms) {}

std::int64_t Observer::server_time(const api::ListSummary& s, std::int64_t wall_at_start) const {
  // The Date header has whole seconds: the local clock is the better guess within one.
  return s.server_time_ms.value_or(wall_at_start);
}

boost::asio::awaitable<Observer::Outcome> Observer::full_list() {
  const auto mark = watermark_.begin(clocks_.local_ms());
  const auto wall_at_start = clocks_.wall_ms();
  ObservedSet fresh;
  fresh.reserve(set_.size());
  bool changed = !listed_once_;
  std::int64_t newest = watermark_.newest();
  auto on_page = [&](const api::Page& page) {
    for (const auto& b : page.items) {
      newest = std::max(newest, b.modified_at_ms);
      changed = changed || !set_.holds_same(b);
      fresh.put(b);
    }
    if (on_list_progress_) on_list_progress_(fresh.size());
  };
  auto summary = co_await api_.list_pages(scope_, std::move(on_page));
  if (!summary) co_return Outcome{false, false, 0, "full list failed: " + summary.error().to_string()};
  changed = changed || fresh.size() != set_.size();
  watermark_.saw(newest, clocks_.local_ms());
  fresh.shrink_to_fit();
  std::swap(set_, fresh);
  fresh = ObservedSet{};
  listed_once_ = true;
  fresh_ = true;
  watermark_.completed(mark, server_time(*summary, wall_at_start));
  co_return Outcome{true, changed, summary->pages, {}};
}

boost::asio::awaitable<Observer::Outcome> Observer::poll() {
  fresh_ = false;  // what a full list showed is older than this poll now
  const auto mark = watermark_.begin(clocks_.local_ms());
  const auto wall_at_start = clocks_.wall_ms();
  auto q = scope_;
  q.modified_since_ms = watermark_.since();
  std::vector<core::RemoteBinding> found;
  std::int64_t newest = watermark_.newest();
  auto on_page = [&](const api::Page& page) {
    for (const auto& b : page.items) {
      newest = std::max(newest, b.modified_at_ms);
      // Seen already: the overlap re-reads recent changes, ours included.
      if (!set_.holds_same(b)) found.push_back(b);
    }
  };
  auto summary = co_await api_.list_pages(std::move(q), std::move(on_page));
  if (!summary) co_return Outcome{false, false, 0, "poll failed: " + summary.error().to_string()};
  watermark_.saw(newest, clocks_.local_ms());
  for (const auto& b : found) set_.put(b);
  watermark_.completed(mark, server_time(*summary, wall_at_start));
  co_return Outcome{true, !found.empty(), summary->pages, {}};
}

void Observer::record(const ExecReport& report) {
  const auto now = clocks_.local_ms();
  // What looks saw first, then what writes made of it (newer).
  for (const auto& b : report.seen_bindings) set_.put(b);
  for (const auto& b : report.written_bindings) {
    watermark_.saw(b.modified_at_ms, now);
    set_.put(b);
  }
  for (const auto& id : report.deleted_ids) set_.erase(id);
  for (const auto& id : report.gone_ids) set_.erase(id);
}

}  // namespace thingsync::engine
