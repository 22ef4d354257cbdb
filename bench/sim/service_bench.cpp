// The simulator's request handling without the network: drives Service::handle() in process
// with the requests of wrk_bench.sh (POST, GET by id, GET a page, DELETE) and prints the CPU
// time per request. The HTTP layer and the kernel are not in these figures; wrk_bench.sh
// measures the whole. Usage: thingsync_sim_service_bench [requests] [seed] [get|page|post|delete]
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "heap.hpp"
#include "service.hpp"

namespace {

using thingsync::sim::Options;
using thingsync::sim::Request;
using thingsync::sim::Response;
using thingsync::sim::Service;

double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

Request request(std::string_view method, std::string_view target, std::string_view body = {}) {
  Request r;
  r.method = method;
  r.target = target;
  r.host = "127.0.0.1:8080";
  r.authorization = "Bearer bench";
  if (!body.empty()) {
    r.content_type = "application/json";
    r.has_content_type = true;
  }
  r.body = body;
  return r;
}

// Runs `n` requests made by `make(i)`, expecting `status`; prints ns per request.
template <typename Make>
void run(Service& svc, const char* label, std::size_t n, int status, Make make) {
  std::size_t bad = 0;
  const double t0 = cpu_ns();
  for (std::size_t i = 0; i < n; ++i) {
    const Response res = svc.handle(make(i), false);
    thingsync::sim::populate_heap_growth();
    if (res.status != status) ++bad;
    svc.finish(res);
  }
  const double per = (cpu_ns() - t0) / static_cast<double>(n);
  std::printf("%-28s %9.0f ns CPU/req%s\n", label, per, bad ? "  (unexpected status!)" : "");
}

}  // namespace

int main(int argc, char** argv) {
  thingsync::sim::tune_heap_growth();
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  Options opts;
  opts.token = "bench";
  opts.random_seed = 1;
  opts.relative_next_links = true;
  Service svc(opts);
  svc.store().seed(argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10000, 1'700'000'000'000);

  std::vector<std::string> bodies(n);
  for (std::size_t i = 0; i < n; ++i) {
    char buf[128];
    std::snprintf(buf, sizeof buf,
                  R"({"deviceId":"imei:3599%011zu","password":"Bench-Password-0123456789#x"})", i);
    bodies[i] = buf;
  }
  std::vector<std::string> ids;
  for (const auto* b : svc.store().all()) ids.push_back("/mqtt/bindings/" + std::string(b->id()));

  const std::string_view only = argc > 3 ? argv[3] : "";
  auto want = [&](std::string_view what) { return only.empty() || only == what; };
  if (want("get")) {
    run(svc, "GET /mqtt/bindings/{id}", n, 200,
        [&](std::size_t) { return request("GET", ids.front()); });
  }
  if (want("page")) {
    run(svc, "GET /mqtt/bindings?limit=50", n / 10, 200,
        [&](std::size_t) { return request("GET", "/mqtt/bindings?limit=50"); });
  }
  if (want("post")) {
    run(svc, "POST /mqtt/bindings", n, 201,
        [&](std::size_t i) { return request("POST", "/mqtt/bindings", bodies[i]); });
  }
  if (want("delete")) {
    ids.clear();
    for (const auto* b : svc.store().all()) ids.push_back("/mqtt/bindings/" + std::string(b->id()));
    run(svc, "DELETE /mqtt/bindings/{id}", std::min(n, ids.size()), 204,
        [&](std::size_t i) { return request("DELETE", ids[i]); });
  }
  return 0;
}
