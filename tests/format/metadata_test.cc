#include "format/metadata.h"

#include "gtest/gtest.h"

namespace pinfer {
namespace {

Metadata Sample() {
  Metadata m;
  m.SetBool("flag", true);
  m.SetInt("llama.dim", 64);
  m.SetFloat("llama.rope_theta", 10000.5);
  m.SetString("general.name", "stories260K");
  m.SetIntArray("ids", {1, -2, 3});
  m.SetFloatArray("scores", {0.5f, -1.25f});
  m.SetStringArray("pieces", {"<unk>", "", "\xe2\x96\x81the"});
  return m;
}

TEST(MetadataTest, RoundTripsEveryType) {
  Metadata m = Sample();
  ByteWriter writer;
  m.Serialize(writer);
  ByteReader reader(writer.bytes());
  absl::StatusOr<Metadata> parsed = Metadata::Parse(reader, static_cast<uint32_t>(m.size()));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(reader.remaining(), 0u);
  EXPECT_EQ(parsed->entries(), m.entries());
  EXPECT_EQ(*parsed->GetInt("llama.dim"), 64);
  EXPECT_EQ(*parsed->GetFloat("llama.dim"), 64.0);  // ints read as floats
  EXPECT_EQ(*parsed->GetFloat("llama.rope_theta"), 10000.5);
  EXPECT_EQ((*parsed->GetStringArray("pieces"))[2], "\xe2\x96\x81the");
}

TEST(MetadataTest, TypedGettersExplainMistakes) {
  Metadata m = Sample();
  absl::StatusOr<int64_t> missing = m.GetInt("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "metadata key 'nope' is missing");
  absl::StatusOr<std::string> wrong = m.GetString("llama.dim");
  EXPECT_EQ(wrong.status().message(), "metadata key 'llama.dim' has type int64, expected string");
}

TEST(MetadataTest, SerializationIsDeterministic) {
  Metadata a, b;
  a.SetInt("z", 1);
  a.SetInt("a", 2);
  b.SetInt("a", 2);
  b.SetInt("z", 1);
  ByteWriter wa, wb;
  a.Serialize(wa);
  b.Serialize(wb);
  EXPECT_EQ(wa.bytes(), wb.bytes());
}

TEST(MetadataTest, EveryTruncationIsRejected) {
  Metadata m = Sample();
  ByteWriter writer;
  m.Serialize(writer);
  for (size_t cut = 0; cut < writer.size(); ++cut) {
    ByteReader reader({writer.bytes().data(), cut});
    EXPECT_FALSE(Metadata::Parse(reader, static_cast<uint32_t>(m.size())).ok()) << cut;
  }
}

TEST(MetadataTest, RejectsDuplicatesUnknownTagsAndHugeCounts) {
  ByteWriter dup;
  for (int i = 0; i < 2; ++i) {
    dup.PutShortString("k");
    dup.Put<uint8_t>(2);
    dup.Put<int64_t>(i);
  }
  ByteReader r1(dup.bytes());
  EXPECT_EQ(Metadata::Parse(r1, 2).status().message(), "metadata key 'k' appears twice");

  ByteWriter tag;
  tag.PutShortString("k");
  tag.Put<uint8_t>(99);
  ByteReader r2(tag.bytes());
  EXPECT_EQ(Metadata::Parse(r2, 1).status().message(), "metadata key 'k' has unknown type tag 99");

  ByteWriter huge;
  huge.PutShortString("k");
  huge.Put<uint8_t>(7);
  huge.Put<uint64_t>(uint64_t{1} << 40);
  ByteReader r3(huge.bytes());
  EXPECT_FALSE(Metadata::Parse(r3, 1).ok());
}

}  // namespace
}  // namespace pinfer
