// Tokenizers: text <-> int64 token ids for the language-model recipes. Four kinds, one interface:
//   CharTokenizer  one id per character (UTF-8 code point; a stray byte is its own symbol), vocabulary from a corpus
//   ByteTokenizer  the 256 byte values, no vocabulary to learn
//   WordTokenizer  whitespace-separated words plus <eos> per line and <unk> for the rest (WikiText / PTB style)
//   BpeTokenizer   byte-level byte-pair encoding (Sennrich et al. 2016; GPT-2's byte-level variant), trained here
// Each saves itself as a small JSON file that a checkpoint keeps beside it, because the ids mean nothing without
// the vocabulary that made them:
//
//   auto tok = tg::data::CharTokenizer::build(text);
//   std::vector<int64_t> ids = tok.encode("To be");
//   tok.save("run/tokenizer.json");
//   std::unique_ptr<tg::data::Tokenizer> back = tg::data::load_tokenizer("run/tokenizer.json");
//
// decode(encode(s)) == s for the char, byte and BPE tokenizers whenever every character of s is in the vocabulary
// (always, for byte and BPE); for words, when s is normalised (single spaces, no spaces at line ends) and every
// word is known.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tg::data {

// The whole file as bytes; a tg::Error naming the path when it is missing or unreadable.
std::string read_text_file(const std::string& path);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "char", "byte", "word" or "bpe": the "kind" field of the JSON file
  virtual int64_t vocab_size() const = 0;
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // The text one token stands for (a word without its separator, for WordTokenizer).
  virtual std::string token_text(int64_t id) const = 0;
  // The JSON document save() writes; two tokenizers with equal to_json() give the same ids.
  virtual std::string to_json() const = 0;
  // Writes to_json() through a temporary file renamed over path, so a crash never leaves half a vocabulary.
  void save(const std::string& path) const;

 protected:
  void check_id(int64_t id) const;  // a tg::Error for ids outside [0, vocab_size)
};

// Reads a file written by Tokenizer::save (any kind); a tg::Error naming the file when it is not one.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);
std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& json, const std::string& what = "tokenizer");

class CharTokenizer : public Tokenizer {
 public:
  // Every distinct symbol of the corpus, sorted by its bytes (so "\n" and " " come first, as in char-rnn).
  static CharTokenizer build(std::string_view corpus);
  explicit CharTokenizer(std::vector<std::string> symbols);

  std::string kind() const override { return "char"; }
  int64_t vocab_size() const override { return static_cast<int64_t>(symbols_.size()); }
  // A symbol missing from the vocabulary is a tg::Error that names it and its byte offset.
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string token_text(int64_t id) const override;
  std::string to_json() const override;
  const std::vector<std::string>& symbols() const { return symbols_; }
  // The id of one symbol, or -1.
  int64_t find(std::string_view symbol) const;

 private:
  std::vector<std::string> symbols_;
  std::array<int64_t, 256> byte_id_;  // single-byte symbols: a table, since they are nearly all of any text
  std::unordered_map<std::string, int64_t> multi_id_;
};

// The length of the symbol starting at text[pos]: a well-formed UTF-8 sequence (no overlongs or surrogates), or
// 1 for a byte that does not start one. Splitting a string this way and joining the pieces gives it back.
size_t utf8_symbol_length(std::string_view text, size_t pos);

class ByteTokenizer : public Tokenizer {
 public:
  std::string kind() const override { return "byte"; }
  int64_t vocab_size() const override { return 256; }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string token_text(int64_t id) const override;
  std::string to_json() const override;
};

struct WordTokenizerOptions {
  int64_t min_count = 1;  // rarer words become <unk>
  int64_t max_vocab = 0;  // keep the most frequent words only (0: all), <unk> and <eos> included in the count
};

// WikiText / PTB style, as pytorch/examples' word_language_model: a line is its whitespace-separated words followed
// by <eos>. Ids: <unk> = 0, <eos> = 1, then the words by decreasing count (ties: first appearance). Words missing
// from the vocabulary encode as <unk>; decode joins words with spaces and turns <eos> into a newline.
class WordTokenizer : public Tokenizer {
 public:
  static constexpr int64_t kUnk = 0, kEos = 1;
  static WordTokenizer build(std::string_view corpus, WordTokenizerOptions options = {});
  explicit WordTokenizer(std::vector<std::string> words);  // words[0] must be <unk>, words[1] <eos>

  std::string kind() const override { return "word"; }
  int64_t vocab_size() const override { return static_cast<int64_t>(words_.size()); }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string token_text(int64_t id) const override;
  std::string to_json() const override;
  int64_t find(std::string_view word) const;  // the id, or -1

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> id_;
};

// Byte-level BPE: ids 0..255 are the bytes and id 256 + i is merge i (the concatenation of two earlier tokens).
// Text is first cut into chunks (an optional leading space plus a run of letters/digits, or of punctuation, or a
// run of whitespace), as GPT-2 does with its regex, so merges never cross a word boundary. Any byte string encodes,
// and decode gives it back exactly.
class BpeTokenizer : public Tokenizer {
 public:
  using Merge = std::pair<int64_t, int64_t>;
  // Learns vocab_size - 256 merges from corpus: repeatedly the most frequent adjacent pair (ties: the smallest
  // pair of ids), counted over the distinct chunks weighted by how often each occurs. Stops early when no pair
  // occurs twice. Deterministic.
  static BpeTokenizer train(std::string_view corpus, int64_t vocab_size);
  explicit BpeTokenizer(std::vector<Merge> merges);

  std::string kind() const override { return "bpe"; }
  int64_t vocab_size() const override { return 256 + static_cast<int64_t>(merges_.size()); }
  // Per chunk, merges the pair of lowest merge index until none applies (the order training found them in).
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string token_text(int64_t id) const override;
  std::string to_json() const override;
  const std::vector<Merge>& merges() const { return merges_; }

 private:
  static uint64_t key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }
  void encode_chunk(std::string_view chunk, std::vector<int64_t>& out) const;
  std::vector<Merge> merges_;
  std::vector<std::string> bytes_;              // what each id decodes to
  std::unordered_map<uint64_t, int64_t> rank_;  // pair -> merge index
};

// The chunks BPE works within (see BpeTokenizer); joined, they give text back.
std::vector<std::string_view> bpe_chunks(std::string_view text);

}  // namespace tg::data
