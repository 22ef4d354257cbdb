#include "thingsync/engine/observer.hpp"

#include <catch2/catch.hpp>

#include "world.hpp"

using namespace thingsync;
using thingsync::testing::password;
using thingsync::testing::World;

TEST_CASE("observer: a full list replaces the set and makes it fresh once") {
  World w;
  const auto a = w.api.portal_create("imei:350266800610993", password(1));
  w.api.portal_create("imei:350266800610994", password(2));
  w.full_list();
  CHECK(w.observer().set().size() == 2);
  CHECK(w.observer().take_fresh());
  CHECK_FALSE(w.observer().take_fresh());
  w.api.portal_delete(a);
  w.full_list();
  CHECK(w.observer().set().size() == 1);
  CHECK_FALSE(w.observer().set().contains(a));
}

TEST_CASE("observer: a poll after a full list takes its freshness away") {
  World w;
  w.api.portal_create("imei:350266800610993", password(1));
  w.full_list();
  w.advance_local(1000);
  w.poll();
  CHECK_FALSE(w.observer().take_fresh());
}

TEST_CASE("observer: a poll merges changes, cannot see deletes, and does not make it fresh") {
  World w;
  const auto a = w.api.portal_create("imei:350266800610993", password(1));
  w.full_list();
  (void)w.observer().take_fresh();
  w.advance_local(1000);
  CHECK_FALSE(w.poll());  // nothing new
  const auto b = w.api.portal_create("imei:350266800610994", password(2));
  w.api.portal_delete(a);
  CHECK(w.poll());
  CHECK(w.observer().set().contains(b));
  CHECK(w.observer().set().contains(a));  // a poll cannot show a delete
  CHECK_FALSE(w.observer().take_fresh());
}

TEST_CASE("observer: a poll asks from the overlap behind the newest change, capped by the server time") {
  World w;
  const auto a = w.api.portal_create("imei:350266800610993", password(1));
  w.full_list();
  const auto modified = w.api.store.at(a).binding.modified_at_ms;
  CHECK(w.observer().modified_since() == modified - 60'000);
  w.api.stamp(a, w.api.now_ms + 3'600'000);
  w.advance_local(1);
  w.poll();
  CHECK(w.observer().modified_since() <= w.api.now_ms - 60'000);
}

TEST_CASE("observer: a list that fails on a later page changes nothing") {
  World w;
  w.api.page_size = 1;
  const auto a = w.api.portal_create("imei:350266800610993", password(1));
  w.api.portal_create("imei:350266800610994", password(2));
  w.api.portal_create("imei:350266800610995", password(3));
  REQUIRE(w.full_list());
  (void)w.observer().take_fresh();
  const auto a_before = w.observer().set().find(a);
  REQUIRE(a_before);
  SECTION("a full list") {
    w.api.portal_delete(a);
    w.api.fail_list_after_pages = 1;
    CHECK_FALSE(w.full_list());
    CHECK(w.observer().set().size() == 3);
    CHECK_FALSE(w.observer().take_fresh());
  }
  SECTION("a poll") {
    const auto since = w.observer().modified_since();
    w.advance_local(1);
    w.api.portal_edit(a, "changed-Passw0rd!!!!!!!!!!!");  // on the first page of the poll
    w.api.portal_create("imei:350266800610996", password(4));
    w.api.fail_list_after_pages = 1;
    const auto out = w.poll_outcome();
    CHECK_FALSE(out.ok);
    CHECK(w.observer().set().find(a)->modified_at_ms == a_before->modified_at_ms);
    CHECK(w.observer().set().size() == 3);
    CHECK(w.observer().modified_since() == since);
  }
}
