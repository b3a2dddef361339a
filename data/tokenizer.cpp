// The char, byte and word tokenizers, the JSON files all tokenizers are saved as, and reading a text file.
#include "data/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"

namespace tg::data {

using json = nlohmann::json;

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  TG_CHECK(std::filesystem::exists(path, ec), "cannot read '{}': no such file", path);
  TG_CHECK(!std::filesystem::is_directory(path, ec), "cannot read '{}': it is a directory, not a file", path);
  std::ifstream in(path, std::ios::binary);
  TG_CHECK(in.good(), "cannot read '{}': the file exists but could not be opened", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  TG_CHECK(!in.bad(), "cannot read '{}': read error", path);
  return ss.str();
}

// ---------------------------------------------------------------- Tokenizer

void Tokenizer::save(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TG_CHECK(out.good(), "{} tokenizer: cannot write '{}'", kind(), tmp);
    out << to_json() << "\n";
    out.flush();
    TG_CHECK(out.good(), "{} tokenizer: write to '{}' failed", kind(), tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  TG_CHECK(!ec, "{} tokenizer: cannot rename '{}' to '{}': {}", kind(), tmp, path, ec.message());
}

void Tokenizer::check_id(int64_t id) const {
  TG_CHECK(id >= 0 && id < vocab_size(), "{} tokenizer: id {} is out of range [0, {})", kind(), id, vocab_size());
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  return tokenizer_from_json(read_text_file(path), "tokenizer file '" + path + "'");
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "{}: not a JSON object", what);
  TG_CHECK(j.contains("kind") && j["kind"].is_string(), "{}: no \"kind\" field", what);
  const std::string kind = j["kind"];
  TG_CHECK(kind == "byte" || kind == "char" || kind == "word" || kind == "bpe",
           "{}: unknown tokenizer kind '{}' (expected char, byte, word or bpe)", what, kind);
  // Errors inside the try name the problem only; the catch prefixes them with `what`.
  auto array_field = [&](const char* name) -> const json& {
    TG_CHECK(j.contains(name) && j[name].is_array(), "a {} tokenizer needs an array \"{}\"", kind, name);
    return j[name];
  };
  std::unique_ptr<Tokenizer> tok;
  try {
    if (kind == "byte") {
      tok = std::make_unique<ByteTokenizer>();
    } else if (kind == "char") {
      // Symbols are JSON strings, except single bytes that are not UTF-8, which are stored as numbers.
      std::vector<std::string> symbols;
      for (const json& s : array_field("symbols")) {
        if (s.is_number_unsigned() && s.get<uint64_t>() < 256) symbols.emplace_back(1, static_cast<char>(s.get<int>()));
        else if (s.is_string()) symbols.push_back(s.get<std::string>());
        else TG_ERROR("a symbol must be a string or a byte value, got {}", s.dump());
      }
      tok = std::make_unique<CharTokenizer>(std::move(symbols));
    } else if (kind == "word") {
      tok = std::make_unique<WordTokenizer>(array_field("words").get<std::vector<std::string>>());
    } else {
      std::vector<BpeTokenizer::Merge> merges;
      for (const json& m : array_field("merges")) {
        TG_CHECK(m.is_array() && m.size() == 2 && m[0].is_number_integer() && m[1].is_number_integer(),
                 "a merge must be a pair of ids, got {}", m.dump());
        merges.emplace_back(m[0].get<int64_t>(), m[1].get<int64_t>());
      }
      tok = std::make_unique<BpeTokenizer>(std::move(merges));
    }
  } catch (const json::exception& e) {
    TG_ERROR("{}: {}", what, e.what());
  } catch (const Error& e) {
    TG_ERROR("{}: {}", what, e.what());
  }
  if (j.contains("vocab_size"))
    TG_CHECK(j["vocab_size"] == tok->vocab_size(), "{}: vocab_size says {} but the vocabulary has {} entries", what,
             j["vocab_size"].dump(), tok->vocab_size());
  return tok;
}

// ---------------------------------------------------------------- CharTokenizer

size_t utf8_symbol_length(std::string_view s, size_t pos) {
  auto byte = [&](size_t i) { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  const unsigned b0 = byte(pos);
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte, narrowed to exclude overlongs/surrogates
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  if (pos + n > s.size()) return 1;
  if (byte(pos + 1) < lo || byte(pos + 1) > hi) return 1;
  for (size_t i = 2; i < n; ++i)
    if (byte(pos + i) < 0x80 || byte(pos + i) > 0xBF) return 1;
  return n;
}

namespace {
// Calls fn(symbol, offset) for each symbol of text, in order.
template <class F> void for_each_symbol(std::string_view text, F&& fn) {
  for (size_t pos = 0; pos < text.size();) {
    size_t n = utf8_symbol_length(text, pos);
    fn(text.substr(pos, n), pos);
    pos += n;
  }
}

// How a symbol is shown in an error message: printable ASCII and well-formed multi-byte characters as themselves,
// control characters and stray bytes escaped.
std::string printable(std::string_view s) {
  if (s.size() > 1 && utf8_symbol_length(s, 0) == s.size()) return std::string(s);
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c >= 0x20 && c < 0x7f) out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}
}  // namespace

CharTokenizer CharTokenizer::build(std::string_view corpus) {
  std::vector<std::string> symbols;
  std::array<bool, 256> seen_byte{};
  std::unordered_map<std::string, bool> seen_multi;
  for_each_symbol(corpus, [&](std::string_view sym, size_t) {
    if (sym.size() == 1) {
      auto b = static_cast<unsigned char>(sym[0]);
      if (!seen_byte[b]) symbols.emplace_back(sym), seen_byte[b] = true;
    } else if (seen_multi.emplace(std::string(sym), true).second) {
      symbols.emplace_back(sym);
    }
  });
  std::sort(symbols.begin(), symbols.end());
  return CharTokenizer(std::move(symbols));
}

CharTokenizer::CharTokenizer(std::vector<std::string> symbols) : symbols_(std::move(symbols)) {
  byte_id_.fill(-1);
  for (size_t i = 0; i < symbols_.size(); ++i) {
    const std::string& s = symbols_[i];
    TG_CHECK(!s.empty() && utf8_symbol_length(s, 0) == s.size(),
             "CharTokenizer: entry {} ('{}') is not a single character", i, printable(s));
    bool fresh = s.size() == 1 ? byte_id_[static_cast<unsigned char>(s[0])] < 0 : !multi_id_.count(s);
    TG_CHECK(fresh, "CharTokenizer: character '{}' appears twice in the vocabulary", printable(s));
    if (s.size() == 1) byte_id_[static_cast<unsigned char>(s[0])] = static_cast<int64_t>(i);
    else multi_id_[s] = static_cast<int64_t>(i);
  }
}

int64_t CharTokenizer::find(std::string_view sym) const {
  if (sym.size() == 1) return byte_id_[static_cast<unsigned char>(sym[0])];
  auto it = multi_id_.find(std::string(sym));
  return it == multi_id_.end() ? -1 : it->second;
}

std::vector<int64_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for_each_symbol(text, [&](std::string_view sym, size_t pos) {
    int64_t id = find(sym);
    TG_CHECK(id >= 0, "char tokenizer: character '{}' at byte {} is not in the vocabulary ({} characters)",
             printable(sym), pos, symbols_.size());
    ids.push_back(id);
  });
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (int64_t id : ids) out += token_text(id);
  return out;
}

std::string CharTokenizer::token_text(int64_t id) const {
  check_id(id);
  return symbols_[static_cast<size_t>(id)];
}

std::string CharTokenizer::to_json() const {
  json syms = json::array();
  for (const std::string& s : symbols_) {
    if (s.size() == 1 && static_cast<unsigned char>(s[0]) >= 0x80) syms.push_back(static_cast<unsigned char>(s[0]));
    else syms.push_back(s);
  }
  return json{{"kind", "char"}, {"vocab_size", vocab_size()}, {"symbols", syms}}.dump();
}

// ---------------------------------------------------------------- ByteTokenizer

std::vector<int64_t> ByteTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    check_id(ids[i]);
    out[i] = static_cast<char>(ids[i]);
  }
  return out;
}

std::string ByteTokenizer::token_text(int64_t id) const {
  check_id(id);
  return std::string(1, static_cast<char>(id));
}

std::string ByteTokenizer::to_json() const { return json{{"kind", "byte"}, {"vocab_size", 256}}.dump(); }

// ---------------------------------------------------------------- WordTokenizer

namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Calls on_word(word) for each word and on_eos() at the end of each line. A line is text up to a '\n'; text after
// the last '\n' is a line too when it is non-empty (as Python's readlines gives it).
template <class W, class E> void for_each_word(std::string_view text, W&& on_word, E&& on_eos) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    for (size_t i = pos; i < end;) {
      while (i < end && is_space(text[i])) ++i;
      size_t j = i;
      while (j < end && !is_space(text[j])) ++j;
      if (j > i) on_word(text.substr(i, j - i));
      i = j;
    }
    on_eos();
    pos = end + 1;
  }
}
}  // namespace

WordTokenizer WordTokenizer::build(std::string_view corpus, WordTokenizerOptions o) {
  TG_CHECK(o.min_count >= 1 && (o.max_vocab == 0 || o.max_vocab > 2),
           "WordTokenizer::build: min_count must be >= 1 and max_vocab 0 (all) or > 2, got {} and {}", o.min_count,
           o.max_vocab);
  struct Count {
    int64_t n = 0;
    int64_t first = 0;
  };
  std::unordered_map<std::string_view, Count> counts;
  int64_t order = 0;
  for_each_word(
      corpus,
      [&](std::string_view w) {
        auto [it, fresh] = counts.try_emplace(w, Count{0, order});
        if (fresh) ++order;
        ++it->second.n;
      },
      [] {});
  std::vector<std::pair<std::string_view, Count>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second.n != b.second.n ? a.second.n > b.second.n : a.second.first < b.second.first;
  });
  std::vector<std::string> words{"<unk>", "<eos>"};
  for (const auto& [w, c] : sorted) {
    if (c.n < o.min_count || (o.max_vocab > 0 && static_cast<int64_t>(words.size()) >= o.max_vocab)) break;
    if (w != "<unk>" && w != "<eos>") words.emplace_back(w);
  }
  return WordTokenizer(std::move(words));
}

WordTokenizer::WordTokenizer(std::vector<std::string> words) : words_(std::move(words)) {
  TG_CHECK(words_.size() >= 2 && words_[0] == "<unk>" && words_[1] == "<eos>",
           "WordTokenizer: the vocabulary must start with <unk> and <eos>");
  for (size_t i = 0; i < words_.size(); ++i) {
    const std::string& w = words_[i];
    TG_CHECK(!w.empty() && std::none_of(w.begin(), w.end(), [](char c) { return is_space(c) || c == '\n'; }),
             "WordTokenizer: entry {} ('{}') is empty or contains whitespace", i, printable(w));
    TG_CHECK(id_.emplace(w, static_cast<int64_t>(i)).second, "WordTokenizer: word '{}' appears twice", w);
  }
}

int64_t WordTokenizer::find(std::string_view w) const {
  auto it = id_.find(std::string(w));
  return it == id_.end() ? -1 : it->second;
}

std::vector<int64_t> WordTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for_each_word(
      text,
      [&](std::string_view w) {
        int64_t id = find(w);
        ids.push_back(id < 0 ? kUnk : id);
      },
      [&] { ids.push_back(kEos); });
  return ids;
}

std::string WordTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  bool line_start = true;
  for (int64_t id : ids) {
    check_id(id);
    if (id == kEos) {
      out += '\n';
      line_start = true;
      continue;
    }
    if (!line_start) out += ' ';
    out += words_[static_cast<size_t>(id)];
    line_start = false;
  }
  return out;
}

std::string WordTokenizer::token_text(int64_t id) const {
  check_id(id);
  return words_[static_cast<size_t>(id)];
}

std::string WordTokenizer::to_json() const {
  return json{{"kind", "word"}, {"vocab_size", vocab_size()}, {"words", words_}}.dump();
}

}  // namespace tg::data
