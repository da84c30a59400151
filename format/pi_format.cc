#include "format/pi_format.h"

namespace pinfer {

std::string_view ArtifactKindName(ArtifactKind kind) {
  switch (kind) {
    case ArtifactKind::kModel: return "model";
    case ArtifactKind::kProfile: return "profile";
    case ArtifactKind::kPredictor: return "predictor";
    case ArtifactKind::kPlan: return "plan";
  }
  return "unknown";
}

std::optional<ArtifactKind> ArtifactKindFromRaw(uint32_t raw) {
  if (raw >= 1 && raw <= 4) return static_cast<ArtifactKind>(raw);
  return std::nullopt;
}

}  // namespace pinfer
