// The text of a completion as its tokens arrive: cut before the first stop sequence, and released
// to the client only once final. Two kinds of bytes are held back: a tail that may be the start of
// a stop sequence (it is dropped if the sequence completes), and an incomplete UTF-8 character
// (byte-fallback tokens produce one byte at a time, and a streamed chunk must not split a
// character).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace pinfer {

class CompletionText {
 public:
  // Empty stop sequences are ignored.
  explicit CompletionText(std::vector<std::string> stop = {});

  // Appends a token's bytes. Returns true when a stop sequence is now complete: the text ends
  // before it, and later appends are ignored.
  bool Append(std::string_view piece);
  bool stopped() const { return stopped_; }

  // The final text not yet taken.
  std::string TakeReady();
  // At the end of the generation: everything not yet taken, the held-back tail included.
  std::string TakeRest();

  // The whole text so far (taken or not), cut at the stop sequence.
  const std::string& text() const { return text_; }

 private:
  // Where the final part of text_ ends.
  size_t ReadyEnd() const;

  std::vector<std::string> stop_;
  size_t longest_stop_ = 0;
  std::string text_;
  size_t taken_ = 0;
  bool stopped_ = false;
};

}  // namespace pinfer
