#include "runtime/text/completion_text.h"

#include <algorithm>
#include <utility>

namespace pinfer {
namespace {

// The length of the UTF-8 sequence that `lead` starts (1 for ASCII and for bytes that cannot start
// a sequence: those are released as they are, and the JSON encoder replaces them).
size_t SequenceLength(unsigned char lead) {
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

// The start of an incomplete UTF-8 sequence at the end of text[0, end), or `end` when there is
// none.
size_t CompleteCharactersEnd(const std::string& text, size_t end) {
  for (size_t back = 1; back <= std::min<size_t>(3, end); ++back) {
    const unsigned char c = static_cast<unsigned char>(text[end - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    return SequenceLength(c) > back ? end - back : end;
  }
  return end;
}

}  // namespace

CompletionText::CompletionText(std::vector<std::string> stop) {
  for (std::string& s : stop) {
    if (s.empty()) continue;
    longest_stop_ = std::max(longest_stop_, s.size());
    stop_.push_back(std::move(s));
  }
}

bool CompletionText::Append(std::string_view piece) {
  if (stopped_) return true;
  const size_t old_size = text_.size();
  text_.append(piece);
  // A stop sequence completed by this piece starts at most longest_stop_ - 1 bytes before it.
  const size_t from = old_size >= longest_stop_ ? old_size - (longest_stop_ - 1) : 0;
  size_t cut = std::string::npos;
  for (const std::string& s : stop_) {
    cut = std::min(cut, text_.find(s, from));
  }
  if (cut != std::string::npos) {
    text_.resize(std::max(cut, taken_));
    stopped_ = true;
  }
  return stopped_;
}

size_t CompletionText::ReadyEnd() const {
  size_t end = text_.size();
  if (!stopped_) {
    // Hold back the longest tail that is a proper prefix of a stop sequence.
    for (const std::string& s : stop_) {
      for (size_t n = std::min(s.size() - 1, text_.size()); n > 0; --n) {
        if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
          end = std::min(end, text_.size() - n);
          break;
        }
      }
    }
  }
  return std::max(taken_, CompleteCharactersEnd(text_, end));
}

std::string CompletionText::TakeReady() {
  const size_t end = ReadyEnd();
  std::string ready = text_.substr(taken_, end - taken_);
  taken_ = end;
  return ready;
}

std::string CompletionText::TakeRest() {
  std::string rest = text_.substr(taken_);
  taken_ = text_.size();
  return rest;
}

}  // namespace pinfer
