// Benchmark of the api client against thingsync-sim on loopback (run by hand, never by ctest).
//   thingsync_api_bench [seconds=5] [throttled_requests=5000] [client]
// 0 requests skips step 3; "client" runs only the client of step 2 (for profilers).
// 1. wrk -t1 -c8 GET /mqtt/bindings/{id} against the unthrottled sim: the server's ceiling.
// 2. A minimal Beast client (reference), then the client, 8 connections on one thread, the
//    same GET for the same time: requests/s, CPU time per request, and the client's ratio to 1.
// 3. The client at rateLimit 200 for N requests against a sim limited to 200/s: achieved
//    rate as a fraction of 200, and the number of 429s (target: none).
// The sim runs on CPU 0, wrk and the client on CPU 1 (as bench/sim/wrk_bench.sh does).
#include <sched.h>
#include <sys/resource.h>

#include <cstdio>
#include <iostream>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include "harness.hpp"
#include "thingsync/api/bindings.hpp"
#include "thingsync/api/client.hpp"
#include "thingsync/obs/log.hpp"

using namespace thingsync;
using namespace thingsync::test;
using Clock = std::chrono::steady_clock;

namespace {

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

double wrk_rps(const std::string& url, int seconds) {
  const std::string cmd = "taskset -c 1 wrk -t1 -c8 -d" + std::to_string(seconds) +
                          "s -H 'Authorization: Bearer bench' " + url + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return 0;
  char line[512];
  double rps = 0;
  while (std::fgets(line, sizeof line, p)) {
    std::sscanf(line, "Requests/sec: %lf", &rps);
  }
  ::pclose(p);
  return rps;
}

// CPU time (user + system) of this process so far: the client's cost, whatever the load.
double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

struct Tally {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
};

struct Measured {
  double rps = 0;
  double cpu_us = 0;  // this process's CPU time per request
};

// Runs the workers `make()` returns to completion: requests/s and CPU time per request.
template <class MakeWorkers>
Measured measure(net::io_context& ioc, const Tally& t, MakeWorkers make) {
  const double cpu_before = cpu_seconds();
  const auto start = Clock::now();
  run(ioc, when_all(make()));
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = cpu_seconds() - cpu_before;
  const auto n = static_cast<double>(t.ok + t.failed);
  return {static_cast<double>(t.ok) / took, n > 0 ? 1e6 * cpu / n : 0.0};
}

// The reference: the least a Beast client can do per request (one prebuilt request, one
// keep-alive connection, no timeouts, no auth, no JSON).
net::awaitable<void> minimal_get_loop(std::uint16_t port, std::string target,
                                      Clock::time_point end, Tally* t) {
  namespace http = boost::beast::http;
  boost::beast::tcp_stream stream(co_await net::this_coro::executor);
  co_await stream.async_connect(
      net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port), net::use_awaitable);
  stream.socket().set_option(net::ip::tcp::no_delay(true));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::authorization, "Bearer bench");
  boost::beast::flat_buffer buffer;
  while (Clock::now() < end) {
    co_await http::async_write(stream, req, net::use_awaitable);
    http::response<http::string_body> res;
    co_await http::async_read(stream, buffer, res, net::use_awaitable);
    ++(res.result_int() == 200 ? t->ok : t->failed);
  }
}

net::awaitable<void> get_loop(api::BindingsApi* api, std::string id, Clock::time_point end,
                              Tally* t) {
  while (Clock::now() < end) {
    auto r = co_await api->get(id);
    ++(r ? t->ok : t->failed);
  }
}

net::awaitable<void> get_n(api::BindingsApi* api, std::string id, std::uint64_t* left, Tally* t) {
  while (*left > 0) {
    --*left;
    auto r = co_await api->get(id);
    ++(r ? t->ok : t->failed);
  }
}

std::string first_id(net::io_context& ioc, api::BindingsApi& api) {
  api::ListQuery q;
  q.limit = 1;
  std::string id;
  auto first_page = [&id](const api::Page& p) {
    if (id.empty() && !p.items.empty()) id = p.items.front().id;
  };
  auto r = run(ioc, api.list_pages(q, std::move(first_page)));
  if (!r || id.empty()) throw std::runtime_error("cannot list the sim");
  return id;
}

// A sim on CPU 0 with the given extra arguments; the caller continues on CPU 1.
std::unique_ptr<Sim> start_sim(std::vector<std::string> args) {
  pin_to(0);
  args.insert(args.begin(), {"--token", "bench", "--random-seed", "1"});
  auto sim = std::make_unique<Sim>(std::move(args));
  pin_to(1);
  return sim;
}

std::unique_ptr<api::ApiClient> bench_client(net::io_context& ioc, const Sim& sim, double rate) {
  api::ClientOptions o;
  o.base_url = sim.url();
  o.rate_limit = rate;
  o.concurrency = 8;
  return std::move(api::ApiClient::create(ioc.get_executor(), o,
                                          api::make_static_token_provider(core::Secret("bench")))
                       .value());
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::stoi(argv[1]) : 5;
  const std::uint64_t throttled = argc > 2 ? std::stoull(argv[2]) : 5000;
  const bool client_only = argc > 3 && std::string_view(argv[3]) == "client";
  obs::setup_logging(obs::LogOptions{spdlog::level::warn});

  // 1 + 2: unthrottled.
  {
    const auto sim = start_sim({"--seed", "1000"});
    net::io_context ioc;
    auto client = bench_client(ioc, *sim, 0);
    api::BindingsApi api(*client);
    const auto id = first_id(ioc, api);
    const double wrk = client_only ? 0 : wrk_rps(sim->url() + "/mqtt/bindings/" + id, seconds);

    const auto end_of = [seconds] { return Clock::now() + std::chrono::seconds(seconds); };
    Tally ref;
    Measured minimal;
    if (!client_only) {
      minimal = measure(ioc, ref, [&] {
        std::vector<net::awaitable<void>> workers;
        const auto end = end_of();
        for (int i = 0; i < 8; ++i) {
          workers.push_back(minimal_get_loop(sim->port(), "/mqtt/bindings/" + id, end, &ref));
        }
        return workers;
      });
    }
    Tally t;
    const auto ours = measure(ioc, t, [&] {
      std::vector<net::awaitable<void>> workers;
      const auto end = end_of();
      for (int i = 0; i < 8; ++i) workers.push_back(get_loop(&api, id, end, &t));
      return workers;
    });
    std::printf("unthrottled GET /mqtt/bindings/{id}, 8 connections, %ds\n", seconds);
    std::printf("  wrk -t1 -c8:        %10.0f req/s\n", wrk);
    std::printf("  minimal Beast:      %10.0f req/s  %6.2f us CPU/request (reference)\n",
                minimal.rps, minimal.cpu_us);
    std::printf("  thingsync client:   %10.0f req/s  %6.2f us CPU/request  (%llu ok, %llu failed, "
                "%llu connections)\n",
                ours.rps, ours.cpu_us, static_cast<unsigned long long>(t.ok),
                static_cast<unsigned long long>(t.failed),
                static_cast<unsigned long long>(client->stats().connections_opened));
    std::printf("  ratio:              %10.1f %%  (target >= 70 %%)\n",
                wrk > 0 ? 100.0 * ours.rps / wrk : 0.0);
  }
  if (throttled == 0 || client_only) return 0;

  // 3: throttled at 200/s against a sim that answers 429 above 200/s.
  {
    const auto sim = start_sim({"--seed", "10", "--rate-limit", "200"});
    net::io_context ioc;
    auto client = bench_client(ioc, *sim, 200);
    api::BindingsApi api(*client);
    const auto id = first_id(ioc, api);
    // Let the sim's bucket refill after the listing so both start full.
    net::steady_timer settle(ioc, std::chrono::seconds(1));
    settle.wait();
    const auto rate_limited_before = client->stats().rate_limited;
    Tally t;
    std::uint64_t left = throttled;
    const auto start = Clock::now();
    std::vector<net::awaitable<void>> workers;
    for (int i = 0; i < 8; ++i) workers.push_back(get_n(&api, id, &left, &t));
    run(ioc, when_all(std::move(workers)));
    const double took = std::chrono::duration<double>(Clock::now() - start).count();
    const double rps = static_cast<double>(t.ok) / took;
    std::printf("throttled at rateLimit 200, %llu requests\n",
                static_cast<unsigned long long>(throttled));
    std::printf("  achieved:           %10.1f req/s = %.1f %% of 200 (target >= 97 %%)\n", rps,
                rps / 2.0);
    std::printf("  429s seen:          %10llu  (failed %llu)\n",
                static_cast<unsigned long long>(client->stats().rate_limited - rate_limited_before),
                static_cast<unsigned long long>(t.failed));
  }
  return 0;
}
