#include "runtime/text/bpe_pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "format/strings.h"

namespace pinfer {
namespace {

void AppendUtf8(uint32_t cpt, std::string& out) {
  if (cpt <= 0x7f) {
    out.push_back(static_cast<char>(cpt));
  } else if (cpt <= 0x7ff) {
    out.push_back(static_cast<char>(0xc0 | (cpt >> 6)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3f)));
  } else if (cpt <= 0xffff) {
    out.push_back(static_cast<char>(0xe0 | (cpt >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cpt >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cpt >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cpt & 0x3f)));
  }
}

// The text as llama.cpp's unicode_cpts_from_utf8 reads it, written back as UTF-8 (`words`): a byte
// that does not start a complete sequence becomes U+FFFD; overlong forms come back in their short
// form; surrogates stay. `matched` is the same text for PCRE2, which cannot hold surrogates: they
// are U+E000 there (private use: like a surrogate, neither letter, number nor space; also three
// bytes, so offsets agree). Code points past U+10FFFF, which llama.cpp cannot write back, become
// U+FFFD in both.
struct ReadText {
  std::string words;
  std::string matched;
};
ReadText WellFormedUtf8(std::string_view text) {
  ReadText read;
  std::string& out = read.matched;
  out.reserve(text.size());
  read.words.reserve(text.size());
  auto continuation = [&](size_t i) {
    return i < text.size() && (static_cast<uint8_t>(text[i]) & 0xc0) == 0x80;
  };
  for (size_t i = 0; i < text.size();) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    uint32_t cpt = 0xfffd;
    size_t length = 1;
    if (lead < 0x80) {
      cpt = lead;
    } else if ((lead & 0xe0) == 0xc0 && continuation(i + 1)) {
      cpt = ((lead & 0x1fu) << 6) | (text[i + 1] & 0x3f);
      length = 2;
    } else if ((lead & 0xf0) == 0xe0 && continuation(i + 1) && continuation(i + 2)) {
      cpt = ((lead & 0x0fu) << 12) | ((text[i + 1] & 0x3fu) << 6) | (text[i + 2] & 0x3f);
      length = 3;
    } else if ((lead & 0xf8) == 0xf0 && continuation(i + 1) && continuation(i + 2) &&
               continuation(i + 3)) {
      cpt = ((lead & 0x07u) << 18) | ((text[i + 1] & 0x3fu) << 12) | ((text[i + 2] & 0x3fu) << 6) |
            (text[i + 3] & 0x3f);
      length = 4;
    }
    if (cpt > 0x10ffff) cpt = 0xfffd;
    const bool surrogate = cpt >= 0xd800 && cpt <= 0xdfff;
    AppendUtf8(surrogate ? 0xe000 : cpt, out);
    AppendUtf8(cpt, read.words);
    i += length;
  }
  return read;
}

}  // namespace

struct BpePreTokenizer::Compiled {
  std::vector<pcre2_code*> codes;
  ~Compiled() {
    for (pcre2_code* code : codes) pcre2_code_free(code);
  }
};

absl::StatusOr<BpePreTokenizer> BpePreTokenizer::Create(std::string_view name) {
  BpePreTokenizer pre;
  pre.family_ = FindBpePreTokenizer(name);
  if (pre.family_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown pre-tokenizer '", Sv(name), "'"));
  }
  auto compiled = std::make_shared<Compiled>();
  for (std::string_view expression : pre.family_->expressions) {
    if (expression.empty()) break;
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(expression.data()), expression.size(),
                      PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return absl::InternalError(absl::StrCat("pre-tokenizer '", Sv(name), "': expression ",
                                              Sv(expression), " does not compile at ", error_offset,
                                              ": ", reinterpret_cast<const char*>(message)));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // a speed-up only: matching works without it
    compiled->codes.push_back(code);
  }
  pre.compiled_ = std::move(compiled);
  return pre;
}

std::vector<std::string> BpePreTokenizer::Split(std::string_view raw) const {
  const ReadText read = WellFormedUtf8(raw);
  const std::string& text = read.matched;
  // Pieces as [begin, end) byte ranges of `text`.
  std::vector<std::pair<size_t, size_t>> pieces;
  if (!text.empty()) pieces.push_back({0, text.size()});
  for (pcre2_code* code : compiled_->codes) {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(code, nullptr);
    std::vector<std::pair<size_t, size_t>> cut;
    cut.reserve(pieces.size());
    for (auto [begin, end] : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + begin);
      const size_t length = end - begin;
      size_t done = 0;  // relative to begin: the piece up to here is cut
      size_t from = 0;
      while (from < length) {
        int rc = pcre2_match(code, subject, length, from, PCRE2_NO_UTF_CHECK, match, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // JIT code's stack is small: interpret instead
          rc = pcre2_match(code, subject, length, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, match,
                           nullptr);
        }
        if (rc < 0) break;  // no further match (or a matching limit: the rest stays whole)
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
        const size_t match_begin = ovector[0];
        const size_t match_end = ovector[1];
        if (match_end == match_begin) {  // none of the expressions matches empty; be safe
          from = match_end + 1;
          while (from < length && (subject[from] & 0xc0) == 0x80) ++from;
          continue;
        }
        if (match_begin > done) cut.push_back({begin + done, begin + match_begin});
        cut.push_back({begin + match_begin, begin + match_end});
        done = from = match_end;
      }
      if (done < length) cut.push_back({begin + done, end});
    }
    pcre2_match_data_free(match);
    pieces = std::move(cut);
  }
  std::vector<std::string> words;
  words.reserve(pieces.size());
  for (auto [begin, end] : pieces) words.push_back(read.words.substr(begin, end - begin));
  return words;
}

}  // namespace pinfer
