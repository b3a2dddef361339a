// Tokenizers: lossless round trips, vocabularies built as documented, JSON save/load, and clear errors on bad input.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "tapegrad.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using doctest::Contains;
namespace data = tg::data;

namespace {

using tg::testing::TempDir;

#ifdef TG_CORPUS_DIR
const std::string kCorpora = TG_CORPUS_DIR;
#else
const std::string kCorpora = "data/corpora";
#endif

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Every byte value, a few valid multi-byte characters, and malformed sequences (overlong, surrogate, truncated).
std::string nasty_text() {
  std::string s = "To be, or not to be:\nthat is the question.\n\t  caf\xc3\xa9 ";
  s += "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 ";
  s += "\xc0\xaf \xed\xa0\x80 \xe6\x97";
  for (int c = 0; c < 256; ++c) s += static_cast<char>(c);
  return s;
}

// save -> load -> same JSON, same ids, same text back.
void check_save_load(const data::Tokenizer& tok, const std::string& sample) {
  TempDir tmp;
  const std::string path = tmp.file("tokenizer.json");
  tok.save(path);
  auto back = data::load_tokenizer(path);
  CHECK(back->kind() == tok.kind());
  CHECK(back->vocab_size() == tok.vocab_size());
  CHECK(back->to_json() == tok.to_json());
  CHECK(back->encode(sample) == tok.encode(sample));
  CHECK(back->decode(tok.encode(sample)) == tok.decode(tok.encode(sample)));
  CHECK_FALSE(fs::exists(path + ".tmp"));
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("utf8_symbol_length accepts well-formed UTF-8 only") {
  CHECK(data::utf8_symbol_length("a", 0) == 1);
  CHECK(data::utf8_symbol_length("\xc3\xa9", 0) == 2);
  CHECK(data::utf8_symbol_length("\xe6\x97\xa5", 0) == 3);
  CHECK(data::utf8_symbol_length("\xf0\x9f\x98\x80", 0) == 4);
  CHECK(data::utf8_symbol_length("\xc0\xaf", 0) == 1);      // overlong '/'
  CHECK(data::utf8_symbol_length("\xed\xa0\x80", 0) == 1);  // a UTF-16 surrogate
  CHECK(data::utf8_symbol_length("\xe6\x97", 0) == 1);      // truncated
  CHECK(data::utf8_symbol_length("\xf4\x90\x80\x80", 0) == 1);  // above U+10FFFF
  CHECK(data::utf8_symbol_length("\x80", 0) == 1);          // a lone continuation byte
}

TEST_CASE("char tokenizer: sorted vocabulary, lossless round trip, JSON") {
  const std::string text = nasty_text();
  auto tok = data::CharTokenizer::build(text);
  const auto& syms = tok.symbols();
  CHECK(std::is_sorted(syms.begin(), syms.end()));
  CHECK(tok.find("\xc3\xa9") >= 0);
  CHECK(tok.find("\xf0\x9f\x98\x80") >= 0);
  CHECK(tok.find("\xc3") >= 0);  // appears as a raw byte in the 0..255 run
  std::vector<int64_t> ids = tok.encode(text);
  CHECK(tok.decode(ids) == text);
  CHECK(tok.decode(tok.encode("caf\xc3\xa9")) == "caf\xc3\xa9");
  CHECK(tok.encode("caf\xc3\xa9").size() == 4);  // four characters, five bytes
  check_save_load(tok, text);
}

TEST_CASE("char tokenizer on Tiny Shakespeare: 65 characters, newline and space first") {
  const std::string text = data::read_text_file(kCorpora + "/tinyshakespeare.txt");
  auto tok = data::CharTokenizer::build(text);
  CHECK(tok.vocab_size() == 65);
  CHECK(tok.token_text(0) == "\n");
  CHECK(tok.token_text(1) == " ");
  std::vector<int64_t> ids = tok.encode(text);
  CHECK(ids.size() == text.size());
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("char tokenizer errors name the problem") {
  auto tok = data::CharTokenizer::build("abc");
  CHECK_THROWS_WITH_AS(tok.encode("abz"), Contains("'z' at byte 2 is not in the vocabulary"), tg::Error);
  CHECK_THROWS_WITH_AS(tok.decode({0, 3}), Contains("id 3 is out of range [0, 3)"), tg::Error);
  CHECK_THROWS_WITH_AS(data::CharTokenizer({"a", "a"}), Contains("appears twice"), tg::Error);
  CHECK_THROWS_WITH_AS(data::CharTokenizer({"ab"}), Contains("not a single character"), tg::Error);
}

TEST_CASE("byte tokenizer: every byte string round trips") {
  data::ByteTokenizer tok;
  const std::string text = nasty_text();
  std::vector<int64_t> ids = tok.encode(text);
  CHECK(ids.size() == text.size());
  CHECK(*std::max_element(ids.begin(), ids.end()) == 255);
  CHECK(tok.decode(ids) == text);
  CHECK_THROWS_AS(tok.decode({256}), tg::Error);
  check_save_load(tok, text);
}

TEST_CASE("word tokenizer: words + <eos> per line, frequency order, <unk>") {
  const std::string corpus = "the cat sat\n the  dog sat\n\nthe end";
  auto tok = data::WordTokenizer::build(corpus);
  CHECK(tok.token_text(0) == "<unk>");
  CHECK(tok.token_text(1) == "<eos>");
  CHECK(tok.token_text(2) == "the");  // 3 times
  CHECK(tok.token_text(3) == "sat");  // 2 times
  CHECK(tok.token_text(4) == "cat");  // once each, in order of first appearance
  CHECK(tok.token_text(5) == "dog");
  CHECK(tok.token_text(6) == "end");
  CHECK(tok.vocab_size() == 7);
  // 4 lines (the empty one included) -> 4 <eos>; no trailing newline still ends a line.
  std::vector<int64_t> ids = tok.encode(corpus);
  CHECK(ids == std::vector<int64_t>{2, 4, 3, 1, 2, 5, 3, 1, 1, 2, 6, 1});
  CHECK(tok.decode(ids) == "the cat sat\nthe dog sat\n\nthe end\n");
  // A normalised text round trips exactly; unknown words become <unk>.
  CHECK(tok.decode(tok.encode("the dog\nsat\n")) == "the dog\nsat\n");
  CHECK(tok.encode("a cat\n") == std::vector<int64_t>{0, 4, 1});
  check_save_load(tok, corpus);

  auto small = data::WordTokenizer::build(corpus, {.min_count = 2});
  CHECK(small.vocab_size() == 4);  // <unk> <eos> the sat
  CHECK(small.encode("cat")[0] == data::WordTokenizer::kUnk);
  CHECK(data::WordTokenizer::build(corpus, {.max_vocab = 3}).vocab_size() == 3);
  CHECK_THROWS_AS(data::WordTokenizer({"the"}), tg::Error);
}

TEST_CASE("word tokenizer on WikiText-2: the published token and type counts") {
  const std::string train = data::read_text_file(kCorpora + "/wikitext-2/train.txt");
  auto tok = data::WordTokenizer::build(train);
  CHECK(tok.vocab_size() == 33278);
  CHECK(tok.encode(train).size() == 2088628);
  CHECK(tok.find("<unk>") == data::WordTokenizer::kUnk);
}

TEST_CASE("BPE: chunks, deterministic training, lossless on any bytes, JSON") {
  const std::string corpus = "the theme of the thesis: then the other theatre.\n  Then, the end! 123 4567\n";
  std::string joined;
  for (auto c : data::bpe_chunks(corpus)) joined += c;
  CHECK(joined == corpus);
  std::vector<std::string_view> chunks = data::bpe_chunks("a  the, x\n\ny");
  CHECK(chunks == std::vector<std::string_view>{"a", " ", " the", ",", " x", "\n\n", "y"});

  auto tok = data::BpeTokenizer::train(corpus, 300);
  CHECK(tok.vocab_size() > 256);
  CHECK(tok.vocab_size() <= 300);
  CHECK(tok.merges().front() == data::BpeTokenizer::Merge{'h', 'e'});  // "he": 10 times, "th": 9
  CHECK(data::BpeTokenizer::train(corpus, 300).merges() == tok.merges());
  std::vector<int64_t> ids = tok.encode(corpus);
  CHECK(ids.size() < corpus.size() * 2 / 3);
  CHECK(tok.decode(ids) == corpus);
  const std::string other = nasty_text();
  CHECK(tok.decode(tok.encode(other)) == other);
  CHECK(tok.token_text(tok.encode(" the")[0]) == " the");
  check_save_load(tok, other);

  CHECK(data::BpeTokenizer::train("abc", 1000).vocab_size() == 256);  // no pair occurs twice
  CHECK_THROWS_AS(data::BpeTokenizer::train(corpus, 100), tg::Error);
  CHECK_THROWS_WITH_AS(data::BpeTokenizer({{0, 300}}), Contains("earlier tokens"), tg::Error);
}

TEST_CASE("BPE on Tiny Shakespeare compresses and round trips") {
  const std::string text = data::read_text_file(kCorpora + "/tinyshakespeare.txt").substr(0, 200000);
  auto tok = data::BpeTokenizer::train(text, 512);
  CHECK(tok.vocab_size() == 512);
  std::vector<int64_t> ids = tok.encode(text);
  CHECK(static_cast<double>(text.size()) / static_cast<double>(ids.size()) > 2.0);
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("tokenizer files: bad input is a clear error") {
  TempDir tmp;
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("missing.json")), Contains("no such file"), tg::Error);
  CHECK_THROWS_WITH_AS(data::read_text_file(tmp.dir.string()), Contains("is a directory"), tg::Error);
  write_file(tmp.file("junk.json"), "not json {");
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("junk.json")), Contains("junk.json': not a JSON object"),
                       tg::Error);
  write_file(tmp.file("kind.json"), R"({"kind": "sentencepiece"})");
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("kind.json")), Contains("unknown tokenizer kind"), tg::Error);
  write_file(tmp.file("nosym.json"), R"({"kind": "char"})");
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("nosym.json")), Contains("needs an array \"symbols\""),
                       tg::Error);
  write_file(tmp.file("size.json"), R"({"kind": "char", "vocab_size": 3, "symbols": ["a", "b"]})");
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("size.json")), Contains("vocab_size says 3"), tg::Error);
  write_file(tmp.file("dup.json"), R"({"kind": "word", "words": ["<unk>", "<eos>", "a", "a"]})");
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("dup.json")), Contains("appears twice"), tg::Error);
  write_file(tmp.file("merge.json"), R"({"kind": "bpe", "merges": [[1, 2, 3]]})");
  CHECK_THROWS_WITH_AS(data::load_tokenizer(tmp.file("merge.json")), Contains("pair of ids"), tg::Error);
}

}  // TEST_SUITE("data")
