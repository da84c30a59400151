// How pi-prepare knows that a stage's artifact is up to date. Every stage library records the
// digest of the model an artifact was made for (model.digest) and the arguments it was run with
// (provenance.arguments). pi-prepare passes each stage, as its arguments, a "stage record": one
// line naming the stage, the digests of its inputs and every setting that changes its result, e.g.
//   pi-prepare profile: model=1a2b... datasets=a.txt@3c4d... max-tokens=20000 ...
// A stage is skipped when its artifacts open cleanly and carry exactly the record it would write
// now; any other input or setting redoes it (and so changes the digests the later stages record).
// Thread counts are not part of a record: they change how fast a result comes, not what it is for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "format/pi_format.h"

namespace pinfer {

// XXH3-64 of a file's bytes, as 16 hex digits; errors name the file.
absl::StatusOr<std::string> FileDigest(const std::string& path);

// Digest of a sample file's content: the model digest and every frame's layer, size and checksum
// (the frames' checksums cover their compressed bytes, so equal digests mean equal samples).
// nullopt when the file is absent or does not open as a sample file.
std::optional<std::string> SamplesDigest(const std::string& path,
                                         const std::optional<std::string>& model_digest);

// What a .pi artifact records about how it was made.
struct ArtifactRecord {
  std::string content_digest;               // PiFile::ContentDigestHex: the artifact's own content
  std::string model_digest;                 // model.digest ("" for a model)
  std::string arguments;                    // provenance.arguments ("" when absent)
  std::vector<std::string> source_digests;  // provenance.source_digest (models)
  // provenance.source_path, _size, _mtime_ns (models): each source file as pi-convert found it.
  std::vector<std::string> source_paths;
  std::vector<int64_t> source_sizes;
  std::vector<int64_t> source_mtimes_ns;
};

// nullopt when the file is absent or does not open as a valid artifact of `kind`.
std::optional<ArtifactRecord> ReadArtifactRecord(const std::string& path, ArtifactKind kind);

// The digests of a model's source files (FileDigest), in order. A file that `existing` (the model
// made before, or nullopt) records at the same absolute path with the same size and modification
// time keeps its recorded digest without being read again, as pi-run's conversion cache does
// (runtime/app/model_source.h): a 7B source is not read whole on every run. Errors name the file.
absl::StatusOr<std::vector<std::string>> SourceDigests(const std::vector<std::string>& files,
                                                       const std::optional<ArtifactRecord>& existing);

// The provenance.arguments of a sample file; nullopt when it does not open (or is another model's).
std::optional<std::string> SamplesArguments(const std::string& path,
                                            const std::string& model_digest);

}  // namespace pinfer
