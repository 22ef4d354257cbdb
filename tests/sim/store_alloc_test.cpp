// The simulator's store when memory runs out: a create or an update that meets bad_alloc at
// any of its allocations leaves every index as it was. This file replaces the global
// operator new of the test binary with one that can be told to fail; it fails only inside
// these tests.
#include <cstdio>
#include <cstdlib>
#include <new>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store.hpp"

namespace {
// Allocations left before one fails; negative: none fails.
thread_local long g_allocations_left = -1;
}  // namespace

namespace {
void* allocate(std::size_t n) noexcept {
  if (g_allocations_left >= 0 && g_allocations_left-- == 0) return nullptr;
  return std::malloc(n == 0 ? 1 : n);
}
void* allocate_or_throw(std::size_t n) {
  if (void* p = allocate(n)) return p;
  throw std::bad_alloc();
}
}  // namespace

// Every non-aligned form, so that each pair allocates and frees alike (ASan checks that).
void* operator new(std::size_t n) { return allocate_or_throw(n); }
void* operator new[](std::size_t n) { return allocate_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

using thingsync::core::DeviceId;
using thingsync::sim::Binding;
using thingsync::sim::BindingInput;
using thingsync::sim::Store;

namespace {

std::string imei(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "imei:35%013zu", i);
  return buf;
}

// Everything the store's indexes say, in one comparable value.
struct Snapshot {
  std::vector<std::string> by_created;  // id and device, in createdAt order
  std::size_t size = 0;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

Snapshot snapshot(const Store& store, std::size_t devices) {
  Snapshot s;
  s.size = store.size();
  for (const Binding* b : store.all()) {
    s.by_created.push_back(std::string(b->id()) + " " + std::string(b->device()));
    // by id and by device agree with the ordered index
    REQUIRE(store.find(b->id()) == b);
  }
  std::size_t by_device = 0;
  for (std::size_t d = 0; d < devices; ++d) {
    by_device += store.find_device(DeviceId::parse(imei(d))->canonical()).size();
  }
  REQUIRE(by_device == s.size);
  return s;
}

// Runs `op` with the k-th allocation failing, k = 0, 1, ...: each failed try must leave the
// store as it was; the first try that needs no more than k allocations succeeds. Returns the
// number of failed tries.
template <typename Op>
int fail_each_allocation(Store& store, std::size_t devices, Op op) {
  for (long k = 0;; ++k) {
    const Snapshot before = snapshot(store, devices);
    g_allocations_left = k;
    try {
      op();
      g_allocations_left = -1;
      return static_cast<int>(k);
    } catch (const std::bad_alloc&) {
      g_allocations_left = -1;
    }
    REQUIRE(snapshot(store, devices) == before);
  }
}

}  // namespace

TEST_CASE("sim store: a create or move that runs out of memory changes nothing", "[sim][store]") {
  constexpr std::size_t kDevices = 300;
  Store store(3);
  const std::string principal = "principal/test";
  const std::string client = "00000000-0000-4000-8000-000000000001";
  int failures = 0;
  // 300 creates cross the growth of every index several times (64 slots, then doubling).
  for (std::size_t i = 0; i < kDevices; ++i) {
    const std::string spelling = imei(i);
    const auto device = *DeviceId::parse(spelling);
    failures += fail_each_allocation(store, kDevices, [&] {
      const BindingInput in{spelling, device, std::nullopt, principal, client};
      const auto out = store.create(in, 1000, true);
      REQUIRE(out.binding != nullptr);
    });
  }
  CHECK(store.size() == kDevices);
  // Moves to another device (re-indexed by device) and updates in place.
  const auto all = store.all();
  std::vector<std::string> ids;
  for (const Binding* b : all) ids.push_back(std::string(b->id()));
  for (std::size_t i = 0; i < ids.size(); i += 7) {
    const std::string spelling = imei((i * 13 + 5) % kDevices);
    const auto device = *DeviceId::parse(spelling);
    failures += fail_each_allocation(store, kDevices, [&] {
      const BindingInput in{spelling, device, "n3w-Passw0rd-for-the-test-0001", principal, client};
      const auto out = store.update(ids[i], in, 2000, true);
      REQUIRE(out.has_value());
      REQUIRE(out->binding != nullptr);
    });
  }
  CHECK(store.size() == kDevices);
  CHECK(failures >= 2 * static_cast<int>(kDevices));  // the id and the binding, at least
}
