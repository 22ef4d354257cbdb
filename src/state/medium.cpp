#include "thingsync/state/medium.hpp"

namespace thingsync::state {

Result<Ok> Medium::replace_snapshot(std::string_view bytes) {
  auto writer = begin_snapshot();
  if (!writer) return Result<Ok>::failure(writer.error());
  if (auto r = writer.value()->write(bytes); !r) return r;
  return writer.value()->commit();
}

}  // namespace thingsync::state
