#pragma once

// The two YAML paths of config's yaml_tree.hpp side by side: the fast path and yaml-cpp, on
// the same text, under the streaming rules the loader uses. fast_yaml_test and the
// desired-state fuzz target compare them with this. Needs src/config on the include path.

#include <cstdint>
#include <string>
#include <string_view>

#include "thingsync/core/diagnostic.hpp"
#include "yaml_tree.hpp"

namespace thingsync::testsupport {

namespace yaml = config::detail;

enum class YamlRule { kNone, kBindings, kChunk };

// The rules desired_state.cpp's ChunkParser gives: the root map's `bindings` list (a whole
// file), the root list (a part of a file); and none (a config file).
inline yaml::StreamRule rule_of(YamlRule r) {
  using yaml::kNone;
  using yaml::YNode;
  using yaml::YTree;
  switch (r) {
    case YamlRule::kNone:
      return {};
    case YamlRule::kBindings:
      return [](const YTree& t, std::uint32_t seq) {
        const std::uint32_t parent = t[seq].parent;
        return parent != kNone && parent == t.root() && t[parent].kind == YNode::Kind::kMap &&
               t[parent].children % 2 == 0 && t[seq - 1].parent == parent &&
               t[seq - 1].kind == YNode::Kind::kScalar && t[seq - 1].text == "bindings";
      };
    case YamlRule::kChunk:
      return [](const YTree& t, std::uint32_t seq) { return t[seq].parent == kNone; };
  }
  return {};
}

struct YamlOutcome {
  bool taken = true;  // the fast path did not decline
  bool ok = false;
  std::string log;  // the items handed to the sink, in order, then the tree and diagnostics
};

/// One path's parse of `text`, as a log to compare.
inline YamlOutcome parse_yaml_path(bool fast, std::string_view text, YamlRule r,
                                   std::uint32_t offset) {
  yaml::YTree tree;
  core::Diagnostics diags;
  YamlOutcome o;
  const yaml::ItemSink sink = [&o](const yaml::YTree& t, std::uint32_t item) {
    o.log += "item:\n" + yaml::dump(t, item);
  };
  if (fast) {
    o.taken = yaml::parse_yaml_fast(text, offset, tree, rule_of(r), sink);
    o.ok = o.taken;
  } else {
    o.ok = yaml::parse_yaml_cpp(text, "state.yaml", offset, tree, diags, rule_of(r), sink);
  }
  if (!o.taken) return o;
  o.log += "root:\n" + yaml::dump(tree, tree.root());
  for (const auto& d : diags) o.log += d.to_string() + "\n";
  return o;
}

struct YamlComparison {
  bool taken = false;      // the fast path took the text
  std::string difference;  // "" when the paths agree; else the input and both logs
};

/// Compares both paths on `text` under every rule and two line offsets. They agree when the
/// fast path declines every time, or takes the text every time and builds what yaml-cpp
/// builds (yaml-cpp then finding no error).
inline YamlComparison compare_yaml_paths(std::string_view text) {
  YamlComparison c;
  bool declined = false;
  for (const YamlRule r : {YamlRule::kNone, YamlRule::kBindings, YamlRule::kChunk}) {
    for (const std::uint32_t offset : {0U, 41U}) {
      const YamlOutcome fast = parse_yaml_path(true, text, r, offset);
      (fast.taken ? c.taken : declined) = true;
      if (!fast.taken) continue;
      const YamlOutcome slow = parse_yaml_path(false, text, r, offset);
      if (!slow.ok || fast.log != slow.log) {
        c.difference = "input:\n" + std::string(text) + "\n-- fast path:\n" + fast.log +
                       "-- yaml-cpp" + (slow.ok ? "" : " (error)") + ":\n" + slow.log;
        return c;
      }
    }
  }
  if (c.taken && declined) c.difference = "declined under some rules only:\n" + std::string(text);
  return c;
}

}  // namespace thingsync::testsupport
