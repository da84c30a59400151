// CompletionText: stop sequences across token boundaries, and streamed text that never splits a
// stop sequence's start or a UTF-8 character.
#include "runtime/text/completion_text.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pinfer {
namespace {

TEST(CompletionTextTest, WithoutStopSequencesEverythingIsReadyAtOnce) {
  CompletionText text;
  EXPECT_FALSE(text.Append("Once"));
  EXPECT_EQ(text.TakeReady(), "Once");
  EXPECT_FALSE(text.Append(" upon"));
  EXPECT_EQ(text.TakeReady(), " upon");
  EXPECT_EQ(text.TakeReady(), "");
  EXPECT_EQ(text.TakeRest(), "");
  EXPECT_EQ(text.text(), "Once upon");
}

TEST(CompletionTextTest, AStopSequenceAcrossPiecesCutsTheText) {
  CompletionText text({"\n\n", "The end"});
  EXPECT_FALSE(text.Append("Lily smiled. The"));
  // " The" may be the start of "The end": held back.
  EXPECT_EQ(text.TakeReady(), "Lily smiled. ");
  EXPECT_FALSE(text.Append(" e"));
  EXPECT_EQ(text.TakeReady(), "");
  EXPECT_TRUE(text.Append("nd. More"));
  EXPECT_TRUE(text.stopped());
  EXPECT_EQ(text.TakeReady(), "");
  EXPECT_EQ(text.TakeRest(), "");
  EXPECT_EQ(text.text(), "Lily smiled. ");
  EXPECT_TRUE(text.Append("ignored"));
  EXPECT_EQ(text.text(), "Lily smiled. ");
}

TEST(CompletionTextTest, AHeldBackPrefixIsReleasedWhenTheSequenceBreaks) {
  CompletionText text({"<|im_end|>"});
  EXPECT_FALSE(text.Append("Hi <|im"));
  EXPECT_EQ(text.TakeReady(), "Hi ");
  EXPECT_FALSE(text.Append("age|>"));
  EXPECT_EQ(text.TakeReady(), "<|image|>");
  EXPECT_FALSE(text.Append("<"));
  EXPECT_EQ(text.TakeReady(), "");
  // The generation ends (length) while "<" is held: the rest is released.
  EXPECT_EQ(text.TakeRest(), "<");
  EXPECT_EQ(text.text(), "Hi <|image|><");
}

TEST(CompletionTextTest, TheEarliestStopSequenceWins) {
  CompletionText text({"cd", "b"});
  EXPECT_TRUE(text.Append("abcd"));
  EXPECT_EQ(text.text(), "a");
  EXPECT_EQ(text.TakeRest(), "a");
}

TEST(CompletionTextTest, AStopSequenceInsideOnePiece) {
  CompletionText text({"STOP"});
  EXPECT_TRUE(text.Append("go STOP now"));
  EXPECT_EQ(text.TakeReady(), "go ");
}

TEST(CompletionTextTest, UtfEightCharactersAreNotSplit) {
  CompletionText text;
  // "é" = C3 A9, "😀" = F0 9F 98 80, arriving one byte per token (byte-fallback pieces).
  EXPECT_FALSE(text.Append("caf\xC3"));
  EXPECT_EQ(text.TakeReady(), "caf");
  EXPECT_FALSE(text.Append("\xA9 \xF0\x9F"));
  EXPECT_EQ(text.TakeReady(), "\xC3\xA9 ");
  EXPECT_FALSE(text.Append("\x98"));
  EXPECT_EQ(text.TakeReady(), "");
  EXPECT_FALSE(text.Append("\x80!"));
  EXPECT_EQ(text.TakeReady(), "\xF0\x9F\x98\x80!");
  // A byte that cannot start a character is passed on (the JSON encoder replaces it).
  EXPECT_FALSE(text.Append("\x80"));
  EXPECT_EQ(text.TakeReady(), "\x80");
  // An incomplete character at the end is released by TakeRest.
  EXPECT_FALSE(text.Append("\xE2\x96"));
  EXPECT_EQ(text.TakeReady(), "");
  EXPECT_EQ(text.TakeRest(), "\xE2\x96");
}

TEST(CompletionTextTest, EmptyStopSequencesAreIgnored) {
  CompletionText text({""});
  EXPECT_FALSE(text.Append("abc"));
  EXPECT_EQ(text.TakeReady(), "abc");
}

}  // namespace
}  // namespace pinfer
