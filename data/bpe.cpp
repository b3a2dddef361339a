// Byte-level BPE: the chunking, the trainer (count pairs, merge the most frequent, repeat), encode and decode.
// The trainer recounts every pair after each merge over the distinct chunks: simple to read and, over the distinct
// words of a few-megabyte corpus, fast enough for the few thousand merges a recipe uses.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "data/tokenizer.h"

namespace tg::data {

namespace {

enum class Cat { Word, Punct, Space };

Cat category(unsigned char c) {
  if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f') return Cat::Space;
  // Bytes >= 0x80 belong to non-ASCII letters far more often than to punctuation.
  if (c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return Cat::Word;
  return Cat::Punct;
}

// Replaces each non-overlapping occurrence of (a, b), left to right, by id.
void merge_pair(std::vector<int64_t>& ids, int64_t a, int64_t b, int64_t id) {
  size_t w = 0;
  for (size_t r = 0; r < ids.size(); ++w) {
    if (r + 1 < ids.size() && ids[r] == a && ids[r + 1] == b) {
      ids[w] = id;
      r += 2;
    } else {
      ids[w] = ids[r++];
    }
  }
  ids.resize(w);
}

}  // namespace

std::vector<std::string_view> bpe_chunks(std::string_view text) {
  std::vector<std::string_view> chunks;
  const size_t n = text.size();
  auto cat = [&](size_t i) { return category(static_cast<unsigned char>(text[i])); };
  for (size_t i = 0; i < n;) {
    size_t j = i;
    // A single space joins the word or punctuation run after it (" the"), as in GPT-2.
    if (text[j] == ' ' && j + 1 < n && cat(j + 1) != Cat::Space) ++j;
    const Cat c = cat(j);
    size_t k = j + 1;
    while (k < n && cat(k) == c) ++k;
    // A whitespace run leaves its last space to the word that follows it.
    if (c == Cat::Space && k < n && k - i > 1 && text[k - 1] == ' ') --k;
    chunks.push_back(text.substr(i, k - i));
    i = k;
  }
  return chunks;
}

BpeTokenizer BpeTokenizer::train(std::string_view corpus, int64_t vocab_size) {
  TG_CHECK(vocab_size >= 256, "BpeTokenizer::train: vocab_size must be at least 256 (the bytes), got {}", vocab_size);
  // Distinct chunks with their counts, in a sorted map so that the work is done in the same order everywhere.
  std::map<std::string_view, int64_t> counts;
  for (std::string_view c : bpe_chunks(corpus)) ++counts[c];
  std::vector<std::vector<int64_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [chunk, n] : counts) {
    std::vector<int64_t> ids(chunk.size());
    for (size_t i = 0; i < chunk.size(); ++i) ids[i] = static_cast<unsigned char>(chunk[i]);
    if (ids.size() >= 2) words.push_back(std::move(ids)), freq.push_back(n);
  }

  std::vector<Merge> merges;
  std::unordered_map<uint64_t, int64_t> pair_count;
  for (int64_t id = 256; id < vocab_size; ++id) {
    pair_count.clear();
    for (size_t w = 0; w < words.size(); ++w)
      for (size_t i = 0; i + 1 < words[w].size(); ++i) pair_count[key(words[w][i], words[w][i + 1])] += freq[w];
    uint64_t best = 0;
    int64_t best_n = 0;
    for (const auto& [k, n] : pair_count)
      if (n > best_n || (n == best_n && k < best)) best = k, best_n = n;
    if (best_n < 2) break;  // a merge seen once compresses nothing it was not trained on
    const int64_t a = static_cast<int64_t>(best >> 32), b = static_cast<int64_t>(best & 0xffffffffu);
    merges.emplace_back(a, b);
    for (auto& ids : words) merge_pair(ids, a, b, id);
  }
  return BpeTokenizer(std::move(merges));
}

BpeTokenizer::BpeTokenizer(std::vector<Merge> merges) : merges_(std::move(merges)) {
  bytes_.reserve(256 + merges_.size());
  for (int c = 0; c < 256; ++c) bytes_.emplace_back(1, static_cast<char>(c));
  for (size_t i = 0; i < merges_.size(); ++i) {
    const auto [a, b] = merges_[i];
    const int64_t id = 256 + static_cast<int64_t>(i);
    TG_CHECK(a >= 0 && a < id && b >= 0 && b < id,
             "BpeTokenizer: merge {} ({}, {}) must join two earlier tokens (ids below {})", i, a, b, id);
    TG_CHECK(rank_.emplace(key(a, b), static_cast<int64_t>(i)).second, "BpeTokenizer: merge {} ({}, {}) repeats "
             "an earlier one", i, a, b);
    bytes_.push_back(bytes_[static_cast<size_t>(a)] + bytes_[static_cast<size_t>(b)]);
  }
}

void BpeTokenizer::encode_chunk(std::string_view chunk, std::vector<int64_t>& out) const {
  std::vector<int64_t> ids(chunk.size());
  for (size_t i = 0; i < chunk.size(); ++i) ids[i] = static_cast<unsigned char>(chunk[i]);
  // Apply the earliest-learned merge present, as training would have, until none is.
  while (ids.size() >= 2) {
    int64_t best = -1;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      auto it = rank_.find(key(ids[i], ids[i + 1]));
      if (it != rank_.end() && (best < 0 || it->second < best)) best = it->second;
    }
    if (best < 0) break;
    const auto [a, b] = merges_[static_cast<size_t>(best)];
    merge_pair(ids, a, b, 256 + best);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int64_t> BpeTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 2);
  for (std::string_view c : bpe_chunks(text)) encode_chunk(c, out);
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    check_id(id);
    out += bytes_[static_cast<size_t>(id)];
  }
  return out;
}

std::string BpeTokenizer::token_text(int64_t id) const {
  check_id(id);
  return bytes_[static_cast<size_t>(id)];
}

std::string BpeTokenizer::to_json() const {
  nlohmann::json m = nlohmann::json::array();
  for (const auto& [a, b] : merges_) m.push_back({a, b});
  return nlohmann::json{{"kind", "bpe"}, {"vocab_size", vocab_size()}, {"merges", m}}.dump();
}

}  // namespace tg::data
