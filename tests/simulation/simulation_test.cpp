// The simulation in CI (docs/reliability.md, "Simulation"): fixed seeds, each a bad day of a
// thingsync installation played against the real engine, every invariant checked after each
// step, and convergence once the faults stop. A failure prints its shrunk history.
#include "world.hpp"

#include <catch2/catch.hpp>

#include "history.hpp"
#include "shrink.hpp"

using namespace thingsync::simulation;

namespace {

// Plays seeds [first, first + count); a failure is shrunk and its story printed.
void play_seeds(std::uint64_t first, std::uint64_t count) {
  std::size_t failed = 0;
  for (std::uint64_t seed = first; seed < first + count; ++seed) {
    const auto h = generate(seed);
    const auto o = play(h);
    if (!o.violation) continue;
    ++failed;
    if (failed > 3) continue;  // the first few say enough
    const auto s = shrink(h, o, 1500);
    FAIL_CHECK("seed " << seed << " violates " << o.violation->invariant << "\nshrunk:\n"
                       << render(s.history, s.outcome));
  }
  CHECK(failed == 0);
}

}  // namespace

// 4 x 500: ctest runs them side by side.
TEST_CASE("simulation: seeds 1 to 500 keep every invariant and converge", "[simulation]") {
  play_seeds(1, 500);
}
TEST_CASE("simulation: seeds 501 to 1000 keep every invariant and converge", "[simulation]") {
  play_seeds(501, 500);
}
TEST_CASE("simulation: seeds 1001 to 1500 keep every invariant and converge", "[simulation]") {
  play_seeds(1001, 500);
}
TEST_CASE("simulation: seeds 1501 to 2000 keep every invariant and converge", "[simulation]") {
  play_seeds(1501, 500);
}

// Every seed an exploration (scripts/simulate.sh) once failed on, with the fix named.
TEST_CASE("simulation: seeds that exploration once failed on keep every invariant", "[simulation]") {
  // Two writes with one modifiedAt: API node skews of +-5 s on a clock moving in whole seconds
  // let a portal edit carry exactly thingsync's receipt (fixed in the world: skews that never
  // differ by whole seconds; docs/reliability.md, "Simulation").
  const std::uint64_t stamp_collisions[] = {
      38439188834486202ULL,
      38439188834486273ULL,
      38439188834487507ULL,
      38439188834488007ULL,
      38439188834489743ULL,
      38439188834490304ULL,
      38439188834492686ULL,
      38439188834498686ULL,
      38439188834500347ULL,
      38439188834502950ULL,
      38439188834508582ULL,
      38439188834511696ULL,
      38439188834520994ULL,
      38439188834521577ULL,
      38439188834526144ULL,
      38439188834527938ULL,
      38439188834530713ULL,
      38439188834533557ULL,
      38439188834535499ULL,
      38439188834536121ULL,
      38439188834536393ULL,
      38439188834539941ULL};
  for (const auto seed : stamp_collisions) {
    const auto o = play(generate(seed));
    INFO("seed " << seed << ": " << (o.violation ? o.violation->detail : ""));
    CHECK_FALSE(o.violation);
  }
}

TEST_CASE("simulation: a portal replace during a full list leaves the new binding", "[simulation]") {
  // Seeds 108, 251, 266, 366, 654, ... (21 of 1-2000) failed on the engine: the pass after a
  // full list deleted a duplicate without confirming its kept binding live (fixed in
  // src/engine/executor.cpp). Seed 366 shrunk: start, then a full resync during which the
  // portal replaces d2's binding between two pages.
  const auto h = decode("366/10.12.1.1.50.1.1.1/2.0.653.895/2.0.904.838/1.0.95.319/1.0.810.9,1.8.2.146");
  REQUIRE(h);
  const auto o = play(*h);
  INFO(render(*h, o));
  CHECK_FALSE(o.violation);
  for (const std::uint64_t seed : {108u, 251u, 266u, 366u, 654u, 710u, 781u, 833u, 969u, 1008u}) {
    const auto og = play(generate(seed));
    INFO("seed " << seed << ": " << (og.violation ? og.violation->detail : ""));
    CHECK_FALSE(og.violation);
  }
}

TEST_CASE("simulation: a binding a create adopted stays with its device", "[simulation]") {
  // Explored seeds that failed on the engine: a pending create's lookup adopted a binding the
  // portal had moved to its device, and an update planned on the older list moved it back
  // (fixed in src/engine/executor.cpp). The first one shrunk to two steps.
  const auto h = decode(
      "30596327385864006/4.10.1.0.2.1.1.0/0.0.957.513,2.4.31.144,4.6.25.450/1.0.49.250,2.8.4.463");
  REQUIRE(h);
  const auto o = play(*h);
  INFO(render(*h, o));
  CHECK_FALSE(o.violation);
  for (const std::uint64_t seed :
       {30596327385864006ULL, 30596327385885564ULL, 30596327385928431ULL, 30596327385941084ULL,
        30596327385941233ULL, 30596327385945114ULL, 30596327385981962ULL, 30596327385983493ULL,
        30596327386001613ULL}) {
    const auto og = play(generate(seed));
    INFO("seed " << seed << ": " << (og.violation ? og.violation->detail : ""));
    CHECK_FALSE(og.violation);
  }
}

TEST_CASE("simulation: a portal action racing a confirmed delete is not thingsync's", "[simulation]") {
  // Explored seeds the checker once failed on wrongly: thingsync confirmed a duplicate's kept
  // binding live, then the portal deleted or moved it before the delete landed (fixed in the
  // world: the excuse follows the looks at each binding), or a lookup that timed out was
  // counted as a look.
  for (const std::uint64_t seed :
       {71335325218935763ULL, 71335325218936191ULL, 71335325218937911ULL,
        30596327385983644ULL}) {
    const auto o = play(generate(seed));
    INFO("seed " << seed << ": " << (o.violation ? o.violation->detail : ""));
    CHECK_FALSE(o.violation);
  }
}

TEST_CASE("simulation: a seed replays its history exactly", "[simulation]") {
  for (std::uint64_t seed : {7u, 1234u, 99999u}) {
    const auto h = generate(seed);
    const auto a = play(h);
    const auto b = play(generate(seed));
    CHECK(a.digest == b.digest);
    CHECK(a.story == b.story);
    CHECK(a.requests > 0);
  }
}

TEST_CASE("simulation: a history survives its one-line form", "[simulation]") {
  const auto h = generate(42);
  const auto back = decode(encode(h));
  REQUIRE(back);
  CHECK(encode(*back) == encode(h));
  CHECK(play(*back).digest == play(h).digest);
  CHECK_FALSE(decode("42/3.2.1.0.2.1.1.0"));  // a pool smaller than the fleet
  CHECK_FALSE(decode("nonsense"));
}
