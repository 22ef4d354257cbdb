#pragma once

#include <utility>  // before asio/awaitable.hpp: Boost 1.74 forgets it

#include <cstddef>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "thingsync/api/bindings.hpp"
#include "thingsync/core/watermark.hpp"
#include "thingsync/engine/clocks.hpp"
#include "thingsync/engine/observed_set.hpp"

namespace thingsync::engine {

struct ExecReport;

/// What the daemon knows of the remote side, and how it keeps it current: a full list
/// replaces the observed set (all or nothing), a `modifiedSince` poll merges what changed
/// (all or nothing too), and the answers to thingsync's own writes are merged as they come.
/// Polls cannot see deletes; only a full list can, so only a full list makes the set *fresh*:
/// evidence a delete may be sent on without looking again. Not thread-safe.
class Observer {
 public:
  /// `scope`: the list query of everything in scope (Session::scope_query()).
  Observer(api::Bindings& api, api::ListQuery scope, std::int64_t overlap_ms,
           Clocks clocks = Clocks::system());

  struct Outcome {
    bool ok = false;
    bool changed = false;  ///< something new (always true for the first full list)
    std::size_t pages = 0;
    std::string error;     ///< when !ok: why (never a secret)
  };
  /// Replaces the set with a full list, page by page into a fresh set (only the compact form
  /// is ever held). On failure nothing is replaced.
  boost::asio::awaitable<Outcome> full_list();
  /// Merges the bindings changed since modified_since(). Nothing here grows with the fleet:
  /// a poll that brings nothing new costs one request.
  boost::asio::awaitable<Outcome> poll();
  /// Merges thingsync's own writes (with the modifiedAt their answers gave), deletes and what
  /// a pass's looks found, and forgets bindings a pass found gone.
  void record(const ExecReport& report);

  /// Called after each page of a full list with the bindings listed so far (a long first
  /// list shows its progress on the daemon's STATUS line).
  void on_list_progress(std::function<void(std::size_t)> f) { on_list_progress_ = std::move(f); }

  const ObservedSet& set() const { return set_; }
  bool listed_once() const { return listed_once_; }
  /// True once after each full list: the next pass may delete on its evidence.
  bool take_fresh() { return std::exchange(fresh_, false); }
  /// The modifiedSince of the next poll.
  std::int64_t modified_since() const { return watermark_.since(); }

 private:
  std::int64_t server_time(const api::ListSummary& s, std::int64_t wall_at_start) const;

  api::Bindings& api_;
  api::ListQuery scope_;
  std::function<void(std::size_t)> on_list_progress_;
  Clocks clocks_;
  core::Watermark watermark_;
  ObservedSet set_;
  bool listed_once_ = false;
  bool fresh_ = false;
};

}  // namespace thingsync::engine
